"""``loopc inventory``: the governance inventory (text/Markdown goldens, stable JSON, registry state, policies)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from loopc.compiler.api import load_project
from loopc.compiler.cli.inventory import inventory
from loopc.compiler.cli.inventory_policies import POLICIES, parse_policies, violations
from loopc.compiler.cli.inventory_render import to_markdown
from loopc.compiler.cli.main import main
from loopc.compiler.errors import UsageError
from loopc.runtime.registry.connect import open_registry

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "specs" / "examples"
GOLDEN = REPO / "tests" / "golden" / "inventory"
MODEL = "churn_classifier"

ROW_KEYS = {"pipeline", "file", "model", "task", "label", "owner", "risk_class", "intended_use", "description", "tags",
            "targets", "datasets", "features", "schedule", "monitors", "gates", "registry"}
REGISTRY_KEYS = {"url", "versions", "champion", "promoted_at", "promoted_by", "metrics", "open_breaches"}


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["inventory", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def churn(tmp_path) -> Path:
    return Path(shutil.copytree(EXAMPLES / "churn", tmp_path / "churn",
                                ignore=shutil.ignore_patterns("data", ".loopc", "__pycache__")))


@pytest.mark.parametrize("fmt, golden", [("text", "examples.txt"), ("markdown", "examples.md")])
def test_text_and_markdown_match_their_golden_files(fmt, golden, capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, err = cli(capsys, "specs/examples", "--format", fmt, "--no-registry")
    assert code == 0, err
    if os.environ.get("LOOPC_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        (GOLDEN / golden).write_text(out, encoding="utf-8")
    assert out == (GOLDEN / golden).read_text(encoding="utf-8"), f"{golden} differs; review and update the golden"


def test_json_keys_and_values_are_stable(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, out, _ = cli(capsys, "specs/examples", "-f", "json", "--no-registry")
    document = json.loads(out)
    assert code == 0 and document["format"] == 1 and [r["pipeline"] for r in document["models"]] == ["churn", "demand"]
    churn = document["models"][0]
    assert set(churn) == ROW_KEYS
    assert (churn["model"], churn["owner"], churn["risk_class"], churn["registry"]) == (
        MODEL, "growth-ml@example.com", "limited", None)
    assert churn["datasets"] == [{"name": "customers", "source": "data/customers/*.parquet", "format": "parquet",
                                  "training": True, "columns": 11}]
    assert churn["features"][0] == {"name": "tenure", "column": "tenure_months", "expr": None,
                                    "transforms": ["clip", "standardize"]}
    assert churn["monitors"] == [{"name": "weekly_drift", "schedule": "0 * * * *",
                                  "source": "data/incoming/*.parquet", "on_breach": "retrain"}]
    assert churn["gates"] == {
        "split": "test", "thresholds": ["auc >= 0.7", "log_loss <= 0.6"], "champion": ["auc min_delta -0.005"],
        "slices": ["region: auc >= 0.62"], "fairness": ["gender: demographic_parity_difference <= 0.1"],
        "no_champion": "promote", "approval": "auto", "shadow": True}
    assert (churn["schedule"], churn["targets"]) == ("0 3 * * 1", ["local", "airflow", "slurm"])


def _register(db: Path, versions: int, metrics: dict) -> None:
    with open_registry(db) as registry:
        for n in range(1, versions + 1):
            registry.register_version(MODEL, artifact=f"a{n}", spec_hash="h", lineage={}, metrics=metrics,
                                      gate=None, actor="ci")
        registry.promote(MODEL, 1, actor="alice", reason="first")


def _breach(db: Path, version: int) -> None:
    with open_registry(db) as registry:
        registry.record_event("monitor_breach", MODEL, version, "loopc monitor r1", "2 columns drifted",
                              {"action": "retrain", "monitor": "weekly_drift"})


def test_champion_promotion_metrics_and_open_breaches_from_the_project_registry(churn, capsys):
    db = churn / ".loopc" / "registry.db"
    _register(db, 2, {"auc": 0.8123, "log_loss": 0.41, "confusion": [[1, 2], [3, 4]]})
    _breach(db, 1)
    code, out, _ = cli(capsys, churn, "-f", "json")
    status = json.loads(out)["models"][0]["registry"]
    assert code == 0 and set(status) == REGISTRY_KEYS
    assert (status["url"], status["versions"], status["champion"], status["promoted_by"]) == (
        f"sqlite:///{churn}/.loopc/registry.db", 2, 1, "alice")
    assert status["promoted_at"] and status["metrics"] == {"auc": 0.8123, "log_loss": 0.41}
    assert [(b["monitor"], b["summary"], b["action"]) for b in status["open_breaches"]] == [
        ("weekly_drift", "2 columns drifted", "retrain")]
    code, out, err = cli(capsys, churn, "--fail-on", "open-breach")
    assert code == 1 and "champion v1 of 2, promoted" in out and "weekly_drift: 2 columns drifted" in out
    assert err.splitlines() == [f"policy violation: {MODEL} (churn, {churn}/pipeline.yaml): open-breach: "
                                "champion has open monitor breaches"]


def test_a_new_champion_closes_the_breaches_of_the_old_one(churn, capsys):
    db = churn / ".loopc" / "registry.db"
    _register(db, 2, {})
    _breach(db, 1)
    with open_registry(db) as registry:
        registry.promote(MODEL, 2, actor="bob", reason="retrained")
    code, out, _ = cli(capsys, churn, "-f", "json", "--fail-on", "open-breach")
    status = json.loads(out)["models"][0]["registry"]
    assert code == 0 and (status["champion"], status["promoted_by"], status["open_breaches"]) == (2, "bob", [])


def test_registry_option_and_environment_choose_the_registry(churn, tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "elsewhere.db"
    _register(elsewhere, 1, {})
    code, out, _ = cli(capsys, churn, "-f", "json", "--registry", f"sqlite:///{elsewhere}")
    assert code == 0 and json.loads(out)["models"][0]["registry"]["champion"] == 1
    monkeypatch.setenv("LOOPC_REGISTRY", str(elsewhere))
    code, out, _ = cli(capsys, churn, "-f", "json")
    assert json.loads(out)["models"][0]["registry"]["url"] == f"sqlite:///{elsewhere}"
    code, out, _ = cli(capsys, churn, "-f", "json", "--no-registry")
    assert json.loads(out)["models"][0]["registry"] is None
    code, out, _ = cli(capsys, churn, "-f", "json", "--registry", str(tmp_path / "missing.db"))
    assert code == 0 and json.loads(out)["models"][0]["registry"] is None and not (tmp_path / "missing.db").exists()


def test_a_model_the_registry_does_not_know_has_no_champion(churn, tmp_path, capsys):
    with open_registry(churn / ".loopc" / "registry.db") as registry:
        registry.register_version("other", artifact="a", spec_hash="h", lineage={}, metrics={}, gate=None, actor="ci")
    code, out, _ = cli(capsys, churn)
    assert code == 0 and "0 versions, no champion" in out


def _rows(path: Path, *overrides: str) -> list[dict]:
    return inventory(load_project(path, overrides), None, read_registry=False)


@pytest.mark.parametrize("overrides, broken", [
    ((), {"risky-without-approval"}),
    (("deploy.approval=manual",), set()),
    (("gate.fairness=[]",), {"risky-without-approval", "risky-without-fairness-gate"}),
    (("pipeline.risk_class=minimal", "gate.fairness=[]"), set()),
    (("pipeline.risk_class=minimal", "pipeline.owner=null"), {"missing-owner"}),
    (("pipeline.risk_class=minimal", "pipeline.intended_use=null"), {"missing-intended-use"}),
    (("deploy.approval=manual", "gate.thresholds=[]"), {"no-quality-gate"}),
    (("deploy.approval=manual", "~monitors"), {"no-monitor"}),
])
def test_each_policy_names_exactly_the_rule_the_spec_breaks(churn, overrides, broken):
    lines = violations(_rows(churn, *overrides), list(POLICIES.values()))
    assert {line.split(": ")[1] for line in lines} == broken
    assert all(line.startswith(f"{MODEL} (churn, {churn}") for line in lines)


def test_policies_parse_commas_repeats_and_all():
    assert [p.name for p in parse_policies(["no-monitor,missing-owner", "no-monitor"])] == ["missing-owner", "no-monitor"]
    assert [p.name for p in parse_policies(["all"])] == list(POLICIES)
    assert parse_policies([]) == []
    with pytest.raises(UsageError, match="unknown policy nope"):
        parse_policies(["nope"])
    for blank in ([""], [" , ", ","]):  # a --fail-on that names nothing would check nothing
        with pytest.raises(UsageError, match="--fail-on names no policy; choose from all, missing-owner"):
            parse_policies(blank)


def test_an_unknown_policy_is_a_usage_error(capsys):
    code, _, err = cli(capsys, EXAMPLES, "--fail-on", "no-monitor,nope")
    assert code == 2 and "unknown policy nope" in err


def test_fail_on_lists_every_violation_and_still_prints_the_inventory(capsys):
    code, out, err = cli(capsys, EXAMPLES, "--fail-on", "all", "--no-registry")
    assert code == 1 and out.startswith("2 models")
    assert err.splitlines() == [f"policy violation: {MODEL} (churn, {EXAMPLES}/churn/pipeline.yaml): "
                                "risky-without-approval: risk class limited without human approval"]


def test_markdown_escapes_pipes_backslashes_and_newlines(churn):
    row = _rows(churn)[0]
    row["owner"], row["intended_use"] = "a|b", "line one\nline\\two"
    text = to_markdown([row])
    assert "| churn_classifier | churn | a\\|b | limited |" in text
    assert "| intended use | line one line\\\\two |" in text
