"""End to end on the churn example with small data: real Parquet, real JAX training, real SQLite registry."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml
from rich.console import Console

from loopc.compiler.cli.main import main as loopc_main
from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.execution.progress import PlainProgress
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION, Registry

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"
MODEL = "churn_classifier"
ROWS = 1500
SMALL = ["model.training.epochs=12"]
TRAIN_STEPS = ("validate.customers", "split.customers", "features.churn_classifier", "train.churn_classifier",
               "evaluate.churn_classifier")


def quiet() -> PlainProgress:
    return PlainProgress(Console(file=io.StringIO()))


def make_project(target: Path) -> Path:
    """The churn example with 1,500 rows; thresholds sized for small data (fairness noise, row minimums)."""
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns("__pycache__", "data", ".loopc"))
    spec_file = target / "pipeline.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["gate"]["fairness"][0]["max"] = 0.3
    spec["deploy"]["shadow"]["min_rows"] = 50
    spec["monitors"]["weekly_drift"]["min_rows"] = 100
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    generate(target)
    return target


def generate(target: Path, *extra: str) -> None:
    subprocess.run([sys.executable, str(target / "generate.py"), "--root", str(target), "--rows", str(ROWS), *extra],
                   check=True, capture_output=True)


def run(project: Path, overrides=SMALL, run_id=None, monitor=False):
    pipeline = compile_local(project / "pipeline.yaml", list(overrides))[0]
    plan = pipeline.monitor_plan if monitor else pipeline.train_plan
    return run_plan(plan, project, run_id, jobs=1, progress=quiet())


def registry(project: Path) -> Registry:
    return open_registry(f"sqlite:///{project / '.loopc' / 'registry.db'}")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One project after its first loop: the base every test copies."""
    project = make_project(tmp_path_factory.mktemp("e2e") / "churn")
    return project, run(project, run_id="first")


@pytest.fixture
def project(first_run, tmp_path):
    """A private copy of the project after its first run."""
    return Path(shutil.copytree(first_run[0], tmp_path / "churn"))


def test_first_run_promotes_a_champion_with_lineage_card_and_audit(first_run):
    project, result = first_run
    assert result.ok, result.records
    assert all(status == "done" for status in result.statuses().values()), result.statuses()
    with registry(project) as reg:
        champion = reg.get_alias(MODEL, CHAMPION)
        assert champion is not None and champion.version == 1
        assert champion.dataset_fingerprints["customers"] == result.records["validate.customers"]["outputs"]["fingerprint"]
        assert champion.lineage["step_fingerprints"]["features.churn_classifier"]
        assert champion.code_version and champion.seed == 7 and champion.spec_hash
        assert champion.metrics["auc"] > 0.7
        actions = [(e.action, e.alias) for e in reg.audit_log(MODEL)]
    assert ("set_alias", "champion") in actions
    card = (project / ".loopc" / "cards" / f"{MODEL}-v1.md").read_text(encoding="utf-8")
    assert "# Model card: churn_classifier v1" in card
    html = result.report.read_text(encoding="utf-8")
    assert "gate.churn_classifier" in html and "demographic_parity_difference" in html


def test_rerun_on_unchanged_inputs_trains_nothing_and_registers_nothing(project):
    result = run(project, run_id="second")
    assert result.ok
    assert {result.statuses()[s] for s in TRAIN_STEPS} == {"cached"}
    assert "already the champion" in result.records["register.churn_classifier"]["message"]
    with registry(project) as reg:
        assert [v.version for v in reg.versions(MODEL)] == [1]


def test_changed_learning_rate_retrains_but_does_not_revalidate(project):
    result = run(project, [*SMALL, "model.optimizer.lr=0.02"])
    statuses = result.statuses()
    assert [statuses[s] for s in TRAIN_STEPS[:3]] == ["cached"] * 3
    assert statuses["train.churn_classifier"] == "done" and statuses["evaluate.churn_classifier"] == "done"
    assert statuses["gate.churn_classifier"] == "done"


def _corrupt(table: pa.Table, how: str) -> pa.Table:
    if how == "missing_column":
        return table.drop_columns(["tenure_months"])
    if how == "nulls":
        mask = pa.array([i % 10 == 0 for i in range(table.num_rows)])
        return table.set_column(table.column_names.index("support_calls"), "support_calls",
                                pc.if_else(mask, pa.scalar(None, table.column("support_calls").type),
                                           table.column("support_calls")))
    if how == "changed_type":
        text = pa.array([f"{v} months" for v in table.column("tenure_months").to_pylist()])
        return table.set_column(table.column_names.index("tenure_months"), "tenure_months", text)
    values = table.column("monthly_charges").to_numpy().copy()
    values[::50] = 5000.0  # max is 1000
    return table.set_column(table.column_names.index("monthly_charges"), "monthly_charges", pa.array(values))


@pytest.mark.parametrize("how, column, rule", [
    ("missing_column", "tenure_months", "missing_column"),
    ("nulls", "support_calls", "nullable"),
    ("changed_type", "tenure_months", "type"),
    ("out_of_range", "monthly_charges", "range"),
])
def test_corrupted_data_stops_at_validate_and_leaves_the_champion(project, capsys, how, column, rule):
    files = sorted((project / "data" / "customers").glob("*.parquet"))
    pq.write_table(_corrupt(pq.read_table(files[0]), how), files[0])
    code = loopc_main(["run", str(project / "pipeline.yaml"), *SMALL, "--run-id", "bad"])
    out = capsys.readouterr()
    assert code == 1 and "Traceback" not in out.err + out.out
    assert "validate.customers failed" in out.out and f"column '{column}'" in out.out
    record = json.loads((project / ".loopc" / "runs" / "bad" / "validate.customers.json").read_text())
    assert record["status"] == "failed"
    assert f"column '{column}'" in record["message"] and rule in record["message"], record["message"]
    assert "customers" in record["message"]
    assert not (project / ".loopc" / "runs" / "bad" / "train.churn_classifier.json").exists()
    with registry(project) as reg:
        assert [v.version for v in reg.versions(MODEL)] == [1]
        assert reg.get_alias(MODEL, CHAMPION).version == 1
    assert (project / ".loopc" / "runs" / "bad" / "reports" / "validate.customers.validation.json").is_file()
    assert f"{column}: {rule}" in (project / ".loopc" / "runs" / "bad" / "report.html").read_text(encoding="utf-8")


def test_drift_triggers_retraining_and_the_cooldown_holds_the_next_breach(project):
    generate(project, "--batch", "1", "--drifted", "--append")
    result = run(project, monitor=True, run_id="watch1")
    verdict = result.records["monitor.weekly_drift"]["outputs"]
    assert verdict["breach"] and verdict["action"] == "retrain", verdict
    assert result.triggered is not None
    retrain = result.triggered.statuses()
    assert retrain["validate.customers"] == "done" and retrain["train.churn_classifier"] == "done"
    assert retrain["gate.churn_classifier"] == "done"
    state = json.loads((project / ".loopc" / "monitors" / "weekly_drift.json").read_text())
    assert state["triggers"] == 1
    again = run(project, monitor=True, run_id="watch2")
    held = again.records["monitor.weekly_drift"]["outputs"]
    assert held["breach"] and held["action"] == "none" and "cooldown" in held["summary"]
    assert again.triggered is None
    with registry(project) as reg:
        assert any(e.action == "monitor_breach" for e in reg.audit_log(MODEL))


def test_run_step_runs_one_compiled_step_file(project):
    pipeline = compile_local(project / "pipeline.yaml", SMALL)[0]
    step_file = pipeline.train_plan.parent / "steps" / "validate.customers.json"
    proc = subprocess.run([sys.executable, "-m", "loopc.runtime", "run-step", str(step_file), "--root", str(project),
                           "--run-id", "single"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["step"] == "validate.customers" and summary["status"] == "cached"
    assert summary["outputs"]["rows"] == ROWS


def test_manual_approval_leaves_a_challenger_until_a_person_promotes_it(tmp_path, capsys):
    project = make_project(tmp_path / "manual")
    result = run(project, [*SMALL, "deploy.approval=manual"])
    assert result.ok
    promote = result.records["promote.churn_classifier"]["outputs"]
    assert promote["promoted"] is False
    assert f"loopc registry promote {MODEL} 1 --reason" in promote["summary"]
    with registry(project) as reg:
        assert reg.get_alias(MODEL, CHAMPION) is None and reg.aliases(MODEL).get("challenger") == 1
    assert loopc_main(["registry", "promote", MODEL, "1", "--reason", "reviewed the card", "--root", str(project)]) == 0
    with registry(project) as reg:
        assert reg.get_alias(MODEL, CHAMPION).version == 1
        assert any(e.action == "manual_promotion" and e.reason == "reviewed the card" for e in reg.audit_log(MODEL))
