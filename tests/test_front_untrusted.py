"""Spec text is untrusted: tags, alias and interpolation bombs, outside resolvers, bad schedules, NaN/inf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.compose import compose_spec
from loopc.compiler.frontend.interpolate import ALLOWED_RESOLVERS, resolver_names
from loopc.compiler.frontend.load import ALIAS_NODE_BUDGET, parse_spec
from loopc.compiler.spec.cron import MACROS, cron_problem, normalized
from loopc.compiler.spec.validate import validate_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"


def _errors(text: str) -> list[tuple[str, int, int, str]]:
    with pytest.raises(SpecErrors) as caught:
        parse_spec(text, "f.yaml")
    return [(e.code, e.line, e.column, e.spec_path) for e in caught.value.errors]


@pytest.mark.parametrize("text, line, col", [
    ("a: !!python/list [1]\n", 1, 4), ("a: !!python/object:os.system {x: 1}\n", 1, 4),
    ("a:\n  - !!set {b}\n", 2, 5), ("a: !custom {x: 1}\n", 1, 4), ("a: !!str 1\n", 1, 4), ("a: ! [1]\n", 1, 4),
    ("a: !!binary aGk=\n", 1, 4), ("a: !!timestamp 2020-01-01\n", 1, 4), ("a: !!int abc\n", 1, 4),
    ("!!map {a: 1}\n", 1, 1), ("a: [1, !!float x]\n", 1, 8), ("? !!python/tuple [1]\n: v\n", 1, 3),
])
def test_every_tag_on_every_kind_of_node_is_refused_where_written(text: str, line: int, col: int) -> None:
    assert _errors(text) == [("LPC006", line, col, "")]


def test_an_exclamation_mark_in_text_is_not_a_tag() -> None:
    assert parse_spec("a: 'hi!'\nb: x != y\n", "f").tree == {"a": "hi!", "b": "x != y"}


def _laughs(levels: int, width: int = 9) -> str:
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nuse: *l{levels - 1}\n"


def test_a_billion_laughs_stops_at_the_alias_budget_with_a_located_error() -> None:
    errors = _errors(_laughs(10))
    assert len(errors) == 1 and errors[0][0] == "LPC007"
    code, line, col, path = errors[0]
    assert path.split(".")[0] in {f"l{i}" for i in range(10)} and line == int(path[1]) + 1 and col == 1


def test_aliases_below_the_budget_still_expand() -> None:
    tree = parse_spec(_laughs(3), "f").tree
    assert len(tree["use"]) == 9 and tree["use"][0][0] == ["lol"] * 9
    nodes_per_l5 = sum(9 ** k for k in range(1, 6)) + 1  # l4 alone copies fewer nodes than the budget allows
    assert nodes_per_l5 < ALIAS_NODE_BUDGET < 9 ** 6


def test_mapping_alias_bomb_is_located_at_the_key_that_copies() -> None:
    keys = "abcdefghij"
    lines = ["m0: &m0 {" + ", ".join(f"{k}: 1" for k in keys) + "}"]
    lines += [f"m{i}: &m{i} {{" + ", ".join(f"{k}: *m{i - 1}" for k in keys) + "}" for i in range(1, 7)]
    errors = _errors("\n".join(lines) + "\n")
    # copies so far: 210 + 2210 + 22210, then 22221 per key of m4: the fourth key (d) passes 100000
    assert [(c, p) for c, _, _, p in errors] == [("LPC007", "m4.d")]
    assert errors[0][1:3] == (5, lines[4].index("d: *m3") + 1)


def test_recursive_alias_is_reported_not_counted_as_a_bomb() -> None:
    assert {code for code, *_ in _errors("a: &a [*a]\nb: *a\n")} == {"LPC006"}


def test_override_values_never_construct_objects_or_expand_aliases() -> None:
    """Whatever grammar parses overrides: a tag stays text or is refused, an alias bomb is refused."""
    text = "!!python/object:os.system x"
    try:
        (composed,) = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", [f"pipeline.description={text}"])
        assert validate_spec(composed).pipeline.description == text
    except SpecErrors as exc:
        assert {e.code for e in exc.errors} == {"LPC404"} and all(e.file == "<override>" for e in exc.errors)
    bomb = "[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]," \
           " &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], [*e,*e]]"
    code, errors = _validate(EXAMPLES / "churn", [f"+pipeline.x={bomb}"])
    assert code == 1 and {e["code"] for e in errors} <= {"LPC404", "LPC007", "LPC101"} and errors


def _validate(target: Path, overrides: list[str]) -> tuple[int, list[dict]]:
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["validate", str(target), *overrides, "--format", "json"])
    return code, json.loads(out.getvalue())


def _errors_with(path: tuple, value: object) -> list:
    """Validation errors of the churn example with ``value`` written at ``path`` (no override grammar involved)."""
    import copy

    from loopc.compiler.frontend.compose import ComposedSpec

    base = compose_spec(EXAMPLES / "churn" / "pipeline.yaml")[0]
    tree = copy.deepcopy(base.tree)
    node = tree
    for key in path[:-1]:
        node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
    node[path[-1]] = value
    try:
        validate_spec(ComposedSpec(base.file, tree, base.positions))
    except SpecErrors as exc:
        assert all(e.line >= 1 and e.file for e in exc.errors)
        return exc.errors
    return []


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text("loopc: 1\n" + body)
    return path


@pytest.mark.parametrize("resolver", ["oc.env:HOME", "oc.env:HOME,x", "oc.decode:'{a: 1}'", "oc.create:'{a: 1}'",
                                      "oc.deprecated:a", "now:%Y", "${n}:HOME", "my.custom:1"])
def test_resolvers_that_read_outside_the_spec_are_refused(tmp_path: Path, resolver: str, monkeypatch) -> None:
    monkeypatch.setenv("LOOPC_TEST_SECRET", "hunter2")
    path = _write(tmp_path, f"n: oc.env\na: 1\nx:\n  y: \"pre ${{{resolver}}} post\"\n")
    with pytest.raises(SpecErrors) as caught:
        compose_spec(path)
    assert [(e.code, e.line, e.column, e.spec_path) for e in caught.value.errors] == [("LPC411", 5, 3, "x.y")]
    assert "hunter2" not in str(caught.value)


def test_a_resolver_nested_in_an_allowed_one_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "a: 1\nx: ${oc.select:missing,${oc.env:HOME}}\n")
    with pytest.raises(SpecErrors) as caught:
        compose_spec(path)
    assert [e.code for e in caught.value.errors] == ["LPC411"]


def test_allowed_resolvers_and_escapes_resolve(tmp_path: Path) -> None:
    body = "a: {k: 1, j: 2}\ns: ${oc.select:a.k,0}\nd: ${oc.select:nope,7}\nkeys: ${oc.dict.keys:a}\n" \
           "vals: ${oc.dict.values:a}\nlit: \\${oc.env:HOME}\nref: ${a.j}\n"
    tree = compose_spec(_write(tmp_path, body))[0].tree
    assert (tree["s"], tree["d"], tree["keys"], tree["vals"], tree["ref"]) == (1, 7, ["k", "j"], [1, 2], 2)
    assert tree["lit"] == "${oc.env:HOME}"
    assert ALLOWED_RESOLVERS == {"oc.select", "oc.dict.keys", "oc.dict.values"}


def test_resolver_names_are_found_at_any_depth() -> None:
    assert sorted(resolver_names("a ${x} ${oc.select:${oc.env:A},${oc.decode:'1'}} ${${n}:v}")) == [
        "${n}", "oc.decode", "oc.env", "oc.select"]
    assert resolver_names("no interpolation ${") == []


def test_an_interpolation_bomb_stops_at_the_budget(tmp_path: Path) -> None:
    lines, previous = ["a: [" + ", ".join(["lol"] * 10) + "]"], "a"
    for name in "bcdefghi":
        lines.append(f"{name}: [" + ", ".join([f"'${{{previous}}}'"] * 10) + "]")
        previous = name
    with pytest.raises(SpecErrors) as caught:
        compose_spec(_write(tmp_path, "\n".join(lines) + "\n"))
    assert [e.code for e in caught.value.errors] == ["LPC007"]
    error = caught.value.errors[0]
    assert error.line >= 3 and error.spec_path.split(".")[0] in "bcdefghi"


def test_interpolations_below_the_budget_resolve(tmp_path: Path) -> None:
    body = "a: [" + ", ".join(["x"] * 1000) + "]\nb: [" + ", ".join(["'${a}'"] * 15) + "]\n"
    tree = compose_spec(_write(tmp_path, body))[0].tree
    assert len(tree["b"]) == 15 and tree["b"][14] == ["x"] * 1000


@pytest.mark.parametrize("value", [
    "0 3 * * 1", "*/15 * * * *", "0 0 1,15 * *", "5-10/2 8-18 * JAN-MAR mon-fri", "0 0 * * 7", "  0   3 * * 1 ", "*/59 5-5 31 12 0",
    *MACROS,
])
def test_cron_expressions_every_scheduler_accepts(value: str) -> None:
    assert cron_problem(value) is None
    assert normalized(value) == " ".join(value.split())


@pytest.mark.parametrize("value", [
    "* * * * * touch /tmp/x; :", "* * * * *\n* * * * * touch /tmp/x", "0 3 * * 1\r", "0\t3 * * * *", "60 * * * *",
    "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *", "*/60 * * * *", "5-1 * * * *", "* * * * * *", "* * * *",
    "@reboot", "@once", "@every 5m", "$(id) * * * *", "`id` * * * *", "0 3 * * 1\u2028", "0 3 * * \x00",
    "a b c d e", "1- * * * *", "*/ * * * *", ",1 * * * *", "0 3 * * 1 #", "",
])
def test_anything_else_is_refused(value: str) -> None:
    assert cron_problem(value) is not None


def test_once_is_only_for_the_pipeline_schedule() -> None:
    assert cron_problem("@once", allow_once=True) is None


@pytest.mark.parametrize("override, path", [
    ("monitors.weekly_drift.schedule='* * * * * touch /tmp/x; :'", "monitors.weekly_drift.schedule"),
    ("pipeline.schedule='0 3 * * 1; id'", "pipeline.schedule"),
    ("monitors.weekly_drift.schedule=@once", "monitors.weekly_drift.schedule"),
])
def test_bad_schedules_are_located_spec_errors(override: str, path: str) -> None:
    composed = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", [override])[0]
    with pytest.raises(SpecErrors) as caught:
        validate_spec(composed)
    assert [(e.code, e.spec_path, e.file) for e in caught.value.errors] == [("LPC108", path, "<override>")]
    assert "five fields" in caught.value.errors[0].hint


def test_a_newline_in_a_monitor_schedule_is_located_in_its_file(tmp_path: Path) -> None:
    text = (EXAMPLES / "churn" / "pipeline.yaml").read_text()
    assert '    schedule: "0 * * * *"\n' in text
    project = tmp_path / "churn"
    import shutil

    shutil.copytree(EXAMPLES / "churn", project, ignore=shutil.ignore_patterns("data", ".loopc"))
    (project / "pipeline.yaml").write_text(text.replace('    schedule: "0 * * * *"\n',
                                                        '    schedule: "0 * * * *\\n* * * * * id"\n'))
    code, errors = _validate(project, [])
    line = text.splitlines().index('    schedule: "0 * * * *"') + 1
    assert code == 1 and [(e["code"], e["line"], e["column"]) for e in errors] == [("LPC108", line, 5)]


@pytest.mark.parametrize("path, value", [
    (("gate", "thresholds", 0, "min"), float("nan")), (("gate", "thresholds", 1, "max"), float("inf")),
    (("features", "tenure", "transforms", 0, "max"), float("-inf")), (("model", "optimizer", "lr"), float("nan")),
    (("deploy", "shadow", "min_agreement"), float("nan")), (("deploy", "shadow", "max_metric_drop"), {"auc": float("inf")}),
    (("model", "optimizer", "params"), {"eps": float("nan")}),
    (("datasets", "customers", "columns", "tenure_months", "max"), float("inf")),
])
def test_non_finite_numbers_are_refused_where_written(path: tuple, value: object) -> None:
    errors = _errors_with(path, value)
    assert any(e.code == "LPC105" and "finite" in e.message for e in errors), errors



@pytest.mark.parametrize("override, message", [
    ("+datasets.customers.checks.3={kind: row_count}", "'datasets.customers.checks' is a list of 3 items"),
    ("++datasets.customers.checks.7.min=1", "it has no item '7'"),
    ("++datasets.customers.checks.name=1", "it has no item 'name'"),
])
def test_overrides_past_the_end_of_a_list_are_located_errors(override: str, message: str) -> None:
    code, errors = _validate(EXAMPLES / "churn", [override])
    assert code == 1 and [(e["code"], e["file"], e["line"]) for e in errors] == [("LPC405", "<override>", 1)]
    assert message in errors[0]["message"]


def test_error_lines_escape_control_characters_and_line_breaks() -> None:
    from loopc.compiler.errors import SpecError, one_line

    error = SpecError("a\nb.yaml", 1, 2, "LPC101", "x\u2028y", "unknown key '\x1b[31m\r'", "did you mean 'é'?")
    assert error.render() == "a\\nb.yaml:1:2: LPC101 x\\u2028y: unknown key '\\x1b[31m\\r' (did you mean 'é'?)"
    assert one_line("plain text é 🙂") == "plain text é 🙂"


AIRFLOW_SCHEDULE_CHECK = """
import json, sys
from airflow.sdk import DAG
out = {}
for expr in json.load(sys.stdin):
    try:
        DAG(dag_id="x", schedule=expr).timetable.validate()
        out[expr] = None
    except Exception as exc:  # the reason Airflow gives
        out[expr] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
"""


def _random_cron(rng) -> str:
    """A cron expression drawn from the grammar spec/cron.py accepts (values at and inside the bounds)."""
    bounds = [(0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, ("JAN", "jun", "Dec")), (0, 7, ("SUN", "mon", "SAT"))]
    fields = []
    for low, high, names in bounds:
        items = []
        for _ in range(rng.randint(1, 3)):
            a, b = sorted(rng.choice([low, high, rng.randint(low, high)]) for _ in range(2))
            item = rng.choice(["*", str(a), f"{a}-{b}", rng.choice(names) if names else str(b)])
            items.append(item + (f"/{rng.randint(1, high)}" if rng.random() < 0.3 else ""))
        fields.append(",".join(items))
    return " ".join(fields)


@pytest.mark.airflow
def test_every_schedule_the_grammar_accepts_airflow_accepts(airflow_python) -> None:
    import random
    import subprocess

    rng = random.Random(7)
    expressions = [_random_cron(rng) for _ in range(300)] + list(MACROS) + ["@once"]
    assert all(cron_problem(e, allow_once=True) is None for e in expressions)
    done = subprocess.run([airflow_python, "-c", AIRFLOW_SCHEDULE_CHECK], input=json.dumps(expressions),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    refused = {e: why for e, why in json.loads(done.stdout.splitlines()[-1]).items() if why}
    assert refused == {}


def test_transform_and_transforms_together_is_an_error_not_a_silent_choice() -> None:
    """The shorthand used to replace 'transforms' silently (a vocabulary written there was dropped)."""
    composed = compose_spec(EXAMPLES / "churn" / "pipeline.yaml",
                            ["+features.contract.transforms=[{kind: onehot, vocabulary: [monthly]}]"])[0]
    with pytest.raises(SpecErrors) as caught:
        validate_spec(composed)
    assert [(e.code, e.spec_path) for e in caught.value.errors] == [("LPC107", "features.contract")]
    assert "not both" in caught.value.errors[0].message


@pytest.mark.parametrize("path, value", [(("datasets", "customers", "source", "path"), "data/\x00x"),
                                         (("pipeline", "state_dir"), "a\nb"),
                                         (("monitors", "weekly_drift", "source", "path"), "in\tcoming")])
def test_paths_with_control_characters_are_refused(path: tuple, value: str) -> None:
    errors = _errors_with(path, value)
    assert [(e.code, e.spec_path) for e in errors] == [("LPC106", ".".join(path))]
    assert "control characters" in errors[0].hint



def test_optimizer_keyword_names_are_identifiers() -> None:
    """They become Python keyword arguments of the optax optimizer; any other text failed only in training."""
    errors = _errors_with(("model", "optimizer", "params"), {"b1; x": 0.9})
    assert [(e.code, e.spec_path) for e in errors] == [("LPC106", "model.optimizer.params.b1; x")]
