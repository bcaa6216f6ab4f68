"""Property tests: mutated examples always fail validation with an error located where the mutation is."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from loopc.compiler.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"
# The files each example's defaults list actually composes (mutating an unused option changes nothing).
USED = {
    "churn": ["pipeline.yaml", "dataset/customers.yaml", "model/logistic.yaml"],
    "demand": ["pipeline.yaml", "dataset/store_sales.yaml", "model/mlp.yaml"],
}
CASES = [(example, file) for example, files in USED.items() for file in files]
BLOCK_KEY = re.compile(r"^( *)([A-Za-z_][\w.]*):(?: |$)")
SCALAR_VALUE = re.compile(r"^( *)([A-Za-z_][\w.]*): +([^\s{\[|>&*#'\"][^#]*)$")
REFERENCE = re.compile(r"\b(dataset|label|column|key|metric): ([A-Za-z_]\w*)")
FLOW_TYPE = re.compile(r"\btype: \w+, ")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate(project: Path) -> tuple[int, list[dict], str]:
    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(["validate", str(project), "--format", "json"])
    text = out.getvalue() + err.getvalue()
    return code, json.loads(out.getvalue()) if out.getvalue().strip() else [], text


def _mutated(example: str, relative: str, mutate) -> tuple[int, list[dict], str, Path, int | None]:
    """Copy ``example``, apply ``mutate(lines) -> changed line number (1-based) or None``, validate."""
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder) / example
        shutil.copytree(EXAMPLES / example, project, ignore=shutil.ignore_patterns("data", ".loopc"))
        target = project / relative
        lines = target.read_text().splitlines()
        line = mutate(lines)
        target.write_text("\n".join(lines) + "\n")
        code, errors, text = _validate(project)
        return code, errors, text, target, line


def _assert_located(result, same_line: bool = True) -> None:
    code, errors, text, target, line = result
    assert code == 1, text
    assert "Traceback" not in text
    in_file = [e for e in errors if Path(e["file"]) == target]
    assert in_file, errors
    if same_line:
        assert any(e["line"] == line for e in in_file), (line, errors)


def _pick(lines: list[str], pattern: re.Pattern[str], index: int) -> int | None:
    candidates = [i for i, text in enumerate(lines) if pattern.search(text) and not text.lstrip().startswith("#")]
    return candidates[index % len(candidates)] if candidates else None


@SETTINGS
@given(case=st.sampled_from(CASES), index=st.integers(0, 500), name=st.from_regex(r"[a-z]{3,8}", fullmatch=True))
def test_unknown_key_is_reported_at_its_line(case, index, name) -> None:
    def mutate(lines):
        at = _pick(lines, BLOCK_KEY, index)
        lines.insert(at, f"{BLOCK_KEY.match(lines[at]).group(1)}zz_{name}: 1")
        return at + 1
    _assert_located(_mutated(*case, mutate))


@SETTINGS
@given(case=st.sampled_from(CASES), index=st.integers(0, 500),
       bad=st.sampled_from(["[[1]]", "{zz: {deep: [1]}}", "[{}, [2]]"]))
def test_wrong_type_is_reported_at_its_line(case, index, bad) -> None:
    def mutate(lines):
        at = _pick(lines, SCALAR_VALUE, index)
        match = SCALAR_VALUE.match(lines[at])
        lines[at] = f"{match.group(1)}{match.group(2)}: {bad}"
        return at + 1
    _assert_located(_mutated(*case, mutate))


@SETTINGS
@given(case=st.sampled_from(CASES), index=st.integers(0, 500))
def test_broken_yaml_is_reported_at_its_line(case, index) -> None:
    def mutate(lines):
        at = _pick(lines, SCALAR_VALUE, index)
        lines[at] = lines[at] + ": broken"
        return at + 1
    _assert_located(_mutated(*case, mutate))


@SETTINGS
@given(case=st.sampled_from(CASES), index=st.integers(0, 500), suffix=st.from_regex(r"[a-z]{1,4}", fullmatch=True))
def test_misspelled_reference_is_reported_at_its_line(case, index, suffix) -> None:
    def mutate(lines):
        at = _pick(lines, REFERENCE, index)
        if at is None:
            return None
        lines[at] = REFERENCE.sub(lambda m: f"{m.group(1)}: {m.group(2)}{suffix}", lines[at], count=1)
        return at + 1
    result = _mutated(*case, mutate)
    assume(result[4] is not None)  # the picked file has no reference to misspell
    _assert_located(result)


@SETTINGS
@given(example=st.sampled_from(sorted(USED)), index=st.integers(0, 500))
def test_deleted_column_type_is_reported_at_its_column(example, index) -> None:
    relative = USED[example][1]

    def mutate(lines):
        at = _pick(lines, FLOW_TYPE, index)
        lines[at] = FLOW_TYPE.sub("", lines[at], count=1)
        return at + 1
    _assert_located(_mutated(example, relative, mutate))


@SETTINGS
@given(case=st.sampled_from(CASES), required=st.sampled_from(["name", "task", "label", "path", "source", "pipeline"]))
def test_deleted_required_key_is_reported_in_its_file(case, required) -> None:
    pattern = re.compile(rf"^ *{required}:")

    def mutate(lines):
        at = _pick(lines, pattern, 0)
        if at is None:
            return None
        indent = len(lines[at]) - len(lines[at].lstrip())
        end = at + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        del lines[at:end]
        return at + 1
    result = _mutated(*case, mutate)
    assume(result[4] is not None)  # the picked file has no such key to delete
    _assert_located(result, same_line=False)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, width=32),
                    st.text("abcxyz_ ${}.:", max_size=8))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text("abkindtype", min_size=1, max_size=5),
                                                                       inner, max_size=3)), max_leaves=6)


@SETTINGS
@given(example=st.sampled_from(sorted(USED)), index=st.integers(0, 10_000), value=VALUES)
def test_any_replaced_node_gives_located_errors_or_a_spec(example, index, value) -> None:
    from loopc.compiler.errors import SpecErrors
    from loopc.compiler.frontend.compose import ComposedSpec, compose_spec
    from loopc.compiler.spec.validate import validate_spec

    base = compose_spec(EXAMPLES / example / "pipeline.yaml")[0]
    paths = sorted((p for p in base.positions if p), key=str)
    path = paths[index % len(paths)]
    tree = json.loads(json.dumps(base.tree))
    node = tree
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        validate_spec(ComposedSpec(base.file, tree, base.positions))
    except SpecErrors as exc:
        assert exc.errors and all(e.line >= 1 and e.code.startswith("LPC") and e.message for e in exc.errors)


@SETTINGS
@given(text=st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_cli(text) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pipeline.yaml"
        path.write_text("loopc: 1\n" + text, encoding="utf-8", errors="surrogatepass")
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["validate", str(path)])
        assert code == 1, out.getvalue()
        assert "internal error" not in err.getvalue() and "Traceback" not in err.getvalue()
