"""Many `loopc run` processes at once in one project (real JAX, Parquet, SQLite): each trains and registers
its own settings and spec hash; runs of the same configuration execute each step once and all succeed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_e2e_loop import MODEL, make_project, registry

from loopc.runtime.execution import runs

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

LOOPC = str(Path(sys.executable).parent / "loopc")
# Small and permissive: every candidate passes the gate, none is promoted (no race for the champion alias).
FAST = ["model.training.epochs=3", "~gate.champion", "gate.thresholds.0.min=0.5", "gate.thresholds.1.max=5",
        "deploy.approval=manual"]
LEARNING_RATES = ["0.011", "0.012", "0.013", "0.014", "0.015", "0.016", "0.017", "0.018"]
DATA_STEPS = ("validate.customers", "split.customers", "features.churn_classifier")


def run_concurrently(project: Path, runs_by_id: dict[str, list[str]]) -> None:
    """Start one `loopc run` per run id at once; every one must exit 0."""
    procs = {run_id: subprocess.Popen([LOOPC, "run", str(project / "pipeline.yaml"), *overrides, "--run-id", run_id,
                                       "--jobs", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for run_id, overrides in runs_by_id.items()}
    for run_id, proc in procs.items():
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"run {run_id} exited {proc.returncode}:\n{out[-3000:]}\n{err[-3000:]}"


def step_doc(state: Path, run_id: str, step: str) -> dict:
    """The step document run ``run_id`` executed (the plan its run.json pins)."""
    pinned = json.loads((runs.run_dir(state, run_id) / runs.RUN_FILE).read_text())
    return json.loads((Path(pinned["file"]).parent / "steps" / f"{step}.json").read_text())


def statuses(state: Path, run_ids, step: str) -> list[str]:
    return sorted(runs.read_record(state, run_id, step)["status"] for run_id in run_ids)


def assert_nothing_left_behind(state: Path) -> None:
    assert not list(state.glob("artifacts/*/.staging-*")) and not list(state.glob("artifacts/*/.trash-*"))
    assert not list(state.glob("locks/*/*.lock")) and not list(state.glob("scratch/*/*"))


def test_eight_concurrent_runs_each_train_and_register_their_own_learning_rate(tmp_path):
    project = make_project(tmp_path / "churn")
    state = project / ".loopc"
    run_ids = {f"lr-{lr}": [*FAST, f"model.optimizer.lr={lr}"] for lr in LEARNING_RATES}
    run_concurrently(project, run_ids)

    with registry(project) as reg:
        versions = {v.version: v for v in reg.versions(MODEL)}
    assert len(versions) == len(LEARNING_RATES)
    spec_hashes = set()
    for run_id in run_ids:
        lr = float(run_id.removeprefix("lr-"))
        assert step_doc(state, run_id, "train.churn_classifier")["config"]["model"]["optimizer"]["lr"] == lr
        registered = runs.read_record(state, run_id, "register.churn_classifier")["outputs"]
        version = versions[registered["version"]]
        assert version.spec_hash == step_doc(state, run_id, "register.churn_classifier")["spec_hash"]
        assert version.lineage["run_id"] == run_id
        trained = json.loads((state / version.artifact / "model.json").read_text())
        assert trained["optimizer"]["lr"] == lr
        spec_hashes.add(version.spec_hash)
    assert len(spec_hashes) == len(LEARNING_RATES)
    for step in DATA_STEPS:  # the same data steps in all eight runs: executed once, the rest waited
        assert statuses(state, run_ids, step) == ["cached"] * 7 + ["done"]
    assert statuses(state, run_ids, "train.churn_classifier") == ["done"] * 8
    assert_nothing_left_behind(state)


def test_concurrent_runs_of_one_configuration_all_succeed_and_train_once(tmp_path):
    project = make_project(tmp_path / "churn")
    state = project / ".loopc"
    run_ids = {f"same-{i}": FAST for i in range(3)}
    run_concurrently(project, run_ids)
    assert statuses(state, run_ids, "train.churn_classifier") == ["cached", "cached", "done"]
    keys = {runs.read_record(state, run_id, "train.churn_classifier")["key"] for run_id in run_ids}
    assert len(keys) == 1
    registered = {runs.read_record(state, run_id, "register.churn_classifier")["outputs"]["version"]
                  for run_id in run_ids}
    assert registered == {1}
    assert_nothing_left_behind(state)
