"""`loopc validate` warns, located, when deploy.shadow.min_rows exceeds the rows the test split can hold
(the dataset's row_count max x split.test); the warning never fails validation and is never cached away."""

from __future__ import annotations

import copy
import json

import pytest
from test_plan_support import EXAMPLES, compose_tree, spec_from_tree
from test_spec_scoring_links import line_of, write_spec

from loopc.compiler.cli.main import main as loopc
from loopc.compiler.spec.spec_warnings import spec_warnings


def churn(max_rows: int | None, min_rows: int | None, test: float = 0.15, enabled: bool = True) -> dict:
    """The churn example with a row_count max, a shadow min_rows and a test fraction."""
    tree = copy.deepcopy(compose_tree(EXAMPLES / "churn" / "pipeline.yaml"))
    dataset = tree["datasets"]["customers"]
    if max_rows is not None:
        dataset["checks"] = [{"kind": "row_count", "min": 1, "max": max_rows}, *dataset["checks"][1:]]
    split = dataset["split"]
    split["train"], split["valid"], split["test"] = round(0.85 - test, 6), 0.15, test
    shadow = tree["deploy"]["shadow"]
    shadow["enabled"] = enabled
    if min_rows is None:
        del shadow["min_rows"]
    else:
        shadow["min_rows"] = min_rows
    return tree


@pytest.mark.parametrize(("max_rows", "min_rows", "test", "warned"), [
    (1000, 151, 0.15, True),   # 1000 x 0.15 = 150 rows at most
    (1000, 150, 0.15, False),  # exactly reachable
    (1000, 300, 0.30, False),
    (1000, 301, 0.30, True),
    (None, 10**9, 0.15, False),  # nothing bounds it statically: the shadow step says so at run time
    (500, None, 0.15, True),    # the default min_rows (100) > 75
])
def test_shadow_min_rows_is_compared_with_the_test_split_bound(max_rows, min_rows, test, warned):
    spec, _ = spec_from_tree(churn(max_rows, min_rows, test))
    codes = [w.code for w in spec_warnings(spec)]
    assert codes == (["LPC601"] if warned else [])


def test_a_disabled_shadow_is_not_warned_about():
    assert spec_warnings(spec_from_tree(churn(100, 500, enabled=False))[0]) == []


def test_validate_prints_the_located_warning_and_still_exits_0(tmp_path, capsys):
    path = write_spec(tmp_path, churn(1000, 200))
    assert loopc(["validate", str(path)]) == 0
    out = capsys.readouterr().out.splitlines()
    line, col = line_of(path, "min_rows: 200")
    assert out[0].startswith(f"warning: {path}:{line}:{col}: LPC601 deploy.shadow.min_rows: min_rows 200 exceeds")
    assert "about 150 rows (row_count max 1000 x split.test 0.15" in out[0]
    assert "(lower deploy.shadow.min_rows to at most 150," in out[0]
    assert out[1] == "1 spec valid, 1 warning"


def test_json_and_github_formats_mark_it_a_warning(tmp_path, capsys):
    path = write_spec(tmp_path, churn(1000, 200))
    assert loopc(["validate", str(path), "--format", "json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert (found["severity"], found["code"], found["path"]) == ("warning", "LPC601", "deploy.shadow.min_rows")
    assert (found["line"], found["column"]) == line_of(path, "min_rows: 200")
    assert loopc(["validate", str(path), "--format", "github"]) == 0
    assert capsys.readouterr().out.startswith(f"::warning file={path},line=")


def test_an_unwritten_min_rows_is_located_at_its_section(tmp_path, capsys):
    path = write_spec(tmp_path, churn(500, None))
    assert loopc(["validate", str(path), "--format", "json"]) == 0
    (found,) = json.loads(capsys.readouterr().out)
    assert (found["line"], found["column"]) == line_of(path, "  shadow:")


def test_the_cache_never_hides_a_warning(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOOPC_CACHE_DIR", str(tmp_path / "cache"))
    warned = write_spec(tmp_path / "warned", churn(1000, 200))
    clean = write_spec(tmp_path / "clean", churn(None, 200))
    for _ in range(2):  # the second run would be served by the cache
        assert loopc(["validate", "--cache", str(warned), str(clean)]) == 0
        out = capsys.readouterr().out
        assert out.count("LPC601") == 1 and out.endswith("2 specs valid, 1 warning\n")


def test_errors_and_warnings_are_reported_together(tmp_path, capsys):
    tree = churn(1000, 200)
    tree["model"]["dataset"] = "customer"
    bad = write_spec(tmp_path / "bad", tree)
    warned = write_spec(tmp_path / "warned", churn(1000, 200))
    assert loopc(["validate", str(bad), str(warned)]) == 1
    out = capsys.readouterr().out
    assert "LPC201" in out and f"warning: {warned}:" in out and out.endswith("1 error in 1 file, 1 warning\n")


def test_the_churn_and_demand_examples_have_no_warnings(capsys):
    assert loopc(["validate", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out == "2 specs valid\n"


def test_the_shadow_step_says_when_the_split_is_too_small_for_min_rows():
    """Where nothing bounds the split statically, the shadow step's log and verdict carry the warning."""
    from loopc.runtime.steps.deploy import shadow_rows_warning

    assert shadow_rows_warning(99, {"min_rows": 100}) == (
        "the test split has 99 rows, fewer than deploy.shadow.min_rows 100: no challenger can pass the shadow on "
        "this data; lower deploy.shadow.min_rows or give the test split more rows")
    assert shadow_rows_warning(100, {"min_rows": 100}) == ""
    assert shadow_rows_warning(99, {}) != "" and shadow_rows_warning(100, {}) == ""  # the spec's default, 100
