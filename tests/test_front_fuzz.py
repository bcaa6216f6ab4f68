"""Random bytes and random YAML into the real ``loopc validate``: located errors (exit 1) or success (exit 0).

``LOOPC_FUZZ_EXAMPLES=600`` runs a longer campaign than CI's default. Never another exit code, never a traceback, never "internal error", and in text format every line is
``path:line:col: LPC### ...`` or the summary. Random YAML trees mix mappings, sequences, scalars,
anchors and aliases (bombs included), tags and odd keys; some are spliced into the churn example so
that they reach the later stages (composition, interpolation, models, cross-references).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopc.compiler.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn" / "pipeline.yaml"
ERROR_LINE = re.compile(r"^.+:\d+:\d+: LPC\d{3} .*$")
SUMMARY = re.compile(r"^(\d+ errors? in \d+ files?|\d+ specs? valid)$")
SETTINGS = settings(max_examples=int(os.environ.get("LOOPC_FUZZ_EXAMPLES", "40")), deadline=None, suppress_health_check=[HealthCheck.too_slow])

WEIRD_TEXT = st.sampled_from(["", " ", "a b", "é", "\u2028", "\x1b[31m", "${x}", "${oc.env:HOME}", "\\${y}",
                              "${oc.decode:'{a: 1}'}", "???", "<<", "~", "-", "?", ":", "#", "'", '"', "!!", "&a",
                              "*a", "1e999", ".nan", "-.inf", "0x10", "2024-01-01", "yes", "null", "[", "{"])
SECTIONS = st.sampled_from(["pipeline", "datasets", "features", "model", "gate", "deploy", "monitors", "defaults",
                            "loopc", "name", "schedule", "kind", "columns", "source", "path"])
TAGS = st.sampled_from(["", "", "", "", "!!python/list ", "!!python/object:os.system ", "!x ", "!!str ", "!!binary ",
                        "!!set ", "!!int ", "! ", "!!timestamp ", "!!omap "])


def quoted(text: str) -> str:
    return json.dumps(text)  # a YAML double-quoted scalar (JSON escapes are YAML escapes)


@st.composite
def yaml_node(draw, depth: int = 0, anchors: list[str] | None = None) -> str:
    """One flow-style YAML node: scalar, list, mapping, alias, each maybe anchored and tagged."""
    anchors = anchors if anchors is not None else []
    choice = draw(st.integers(0, 9 if depth < 3 and draw(st.booleans()) else 4))
    if choice <= 2:
        text = draw(st.one_of(WEIRD_TEXT.map(quoted), st.text(max_size=8).map(quoted), st.integers().map(str),
                              st.floats().map(repr), st.sampled_from(["true", "null", "~", ".inf", "1_0", "0o7"])))
    elif choice <= 4 and anchors:
        return f"*{draw(st.sampled_from(anchors))}"
    elif choice <= 6:
        text = "[" + ", ".join(draw(st.lists(yaml_node(depth + 1, anchors), max_size=4))) + "]"
    else:
        pairs = draw(st.lists(st.tuples(st.one_of(SECTIONS, WEIRD_TEXT.map(quoted), st.integers().map(str)),
                                        yaml_node(depth + 1, anchors)), max_size=4))
        text = "{" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}"
    anchor = ""
    if draw(st.integers(0, 3)) == 0:
        name = f"a{len(anchors)}"
        anchors.append(name)
        anchor = f"&{name} "
    return f"{anchor}{draw(TAGS)}{text}"


@st.composite
def yaml_document(draw) -> str:
    """Block mappings of random sections, each a random node; sometimes an alias bomb."""
    anchors: list[str] = []
    lines = [] if draw(st.integers(0, 5)) == 0 else ["loopc: 1"]
    for section in draw(st.lists(SECTIONS, max_size=6)):
        lines.append(f"{section}: {draw(yaml_node(0, anchors))}")
    if draw(st.integers(0, 6)) == 0:
        levels = draw(st.integers(2, 9))
        lines.append("laughs:")
        lines.append("  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]")
        lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@st.composite
def spliced_example(draw) -> str:
    """The churn example with one random node in place of a value, or one random line inserted."""
    lines = EXAMPLE.read_text().splitlines()
    at = draw(st.integers(0, len(lines) - 1))
    node = draw(yaml_node())
    match = re.match(r"^( *)([A-Za-z_][\w.]*): +(\S.*)$", lines[at])
    if match and draw(st.booleans()):
        lines[at] = f"{match.group(1)}{match.group(2)}: {node}"
    else:
        indent = " " * draw(st.sampled_from([0, 2, 4, 6]))
        lines.insert(at, f"{indent}{draw(st.one_of(SECTIONS, WEIRD_TEXT.map(quoted)))}: {node}")
    return "\n".join(lines) + "\n"


def validate(data: bytes, extra: tuple[str, ...] = (), fmt: str = "text") -> tuple[int, str, str]:
    """Run ``loopc validate`` in process on ``data`` written as pipeline.yaml beside the example's groups."""
    with tempfile.TemporaryDirectory() as folder:
        project = Path(folder)
        for group in ("dataset", "model"):
            (project / group).mkdir()
            for option in (EXAMPLE.parent / group).glob("*.yaml"):
                (project / group / option.name).write_bytes(option.read_bytes())
        path = project / "pipeline.yaml"
        path.write_bytes(data)
        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["validate", str(path), *extra, "--format", fmt])
    return code, out.getvalue(), err.getvalue()


def assert_located_or_valid(code: int, out: str, err: str) -> None:
    assert code in (0, 1), (code, out, err)
    assert "Traceback" not in out + err and "internal error" not in err, err
    lines = out.splitlines()
    assert lines and SUMMARY.match(lines[-1]), out
    errors = lines[:-1]
    assert all(ERROR_LINE.match(line) for line in errors), out
    assert (code == 1) == bool(errors), out
    if code == 1:
        assert err == "", err


@SETTINGS
@given(data=st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    assert_located_or_valid(*validate(data))


@SETTINGS
@given(text=yaml_document())
def test_random_yaml_documents(text: str) -> None:
    assert_located_or_valid(*validate(text.encode("utf-8", "surrogatepass")))


@SETTINGS
@given(text=spliced_example())
def test_random_nodes_in_a_real_spec(text: str) -> None:
    assert_located_or_valid(*validate(text.encode("utf-8", "surrogatepass")))


@settings(max_examples=int(os.environ.get("LOOPC_FUZZ_EXAMPLES", "30")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(node=yaml_node(), key=st.sampled_from(["pipeline.description", "+pipeline.x", "model.optimizer",
                                              "++monitors.weekly_drift.schedule", "gate.thresholds.0.min",
                                              "datasets.customers.checks.5", "model=mlp", "~gate"]))
def test_random_override_values(node: str, key: str) -> None:
    override = key if key.startswith("~") or "=" in key else f"{key}={node}"
    code, out, err = validate(EXAMPLE.read_bytes(), (override,))
    assert_located_or_valid(code, out, err)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=yaml_document())
def test_json_format_is_a_list_of_located_errors(text: str) -> None:
    code, out, err = validate(text.encode("utf-8", "surrogatepass"), fmt="json")
    assert code in (0, 1) and "Traceback" not in out + err and "internal error" not in err
    errors = json.loads(out)
    assert (code == 1) == bool(errors)
    assert all(e["line"] >= 1 and e["column"] >= 1 and re.fullmatch(r"LPC\d{3}", e["code"]) for e in errors)


def test_the_line_check_rejects_a_traceback_and_broken_lines() -> None:
    for bad in [(3, "1 error in 1 file\n", ""), (1, "x.yaml:1:1: LPC101 a\nb\n1 error in 1 file\n", ""),
                (1, "1 error in 1 file\n", "internal error (a bug in loopc ...)")]:
        try:
            assert_located_or_valid(*bad)
        except AssertionError:
            continue
        raise AssertionError(f"accepted {bad}")


HOSTILE_FILES = {
    "bomb": ("loopc: 1\n" + "\n".join(
        [f"l0: &l0 [{', '.join(['lol'] * 9)}]"] + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]"
                                                   for i in range(1, 10)]) + "\n").encode(),
    "tags": b"loopc: 1\npipeline: !!python/object/apply:os.system [id]\n",
    "keys": b'loopc: 1\n"\\e[31m\\nx": 1\n',
}


def test_subprocess_runs_exit_1_with_located_errors() -> None:
    """The console entry point as users run it: one process per hostile file."""
    with tempfile.TemporaryDirectory() as folder:
        for name, data in HOSTILE_FILES.items():
            path = Path(folder) / f"{name}.yaml"
            path.write_bytes(data)
            done = subprocess.run([sys.executable, "-m", "loopc.compiler.cli.main", "validate", str(path)],
                                  capture_output=True, text=True, timeout=120)
            assert_located_or_valid(done.returncode, done.stdout, done.stderr)
            assert done.returncode == 1, name
