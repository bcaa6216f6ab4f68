"""The emitted training job with two Slurm tasks: one JAX runtime across both, process 0 alone writes the model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.runtime.registry.connect import open_registry
from tests.test_slurm_engine import FAST, compile_churn, make_project, submit, wait_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]


def test_two_task_training_job_initializes_one_jax_runtime_and_only_process_0_writes(tmp_path):
    root = make_project(tmp_path / "project")
    out = compile_churn(root, ["+model.resources.tasks_per_node=2", "model.resources.cpus=1", *FAST])
    script = (out / "churn" / "train.churn_classifier.sbatch").read_text()
    assert "#SBATCH --ntasks-per-node=2\n" in script and "srun --kill-on-bad-exit=1 " in script
    jobs = submit(out / "churn")
    wait_jobs(jobs.values())
    logs = {p.name: p.read_text() for p in (out / "churn" / "logs").glob("*.log")}
    [train_log] = [text for name, text in logs.items() if name.startswith("churn.train.churn_classifier-")]
    assert "JAX process 0 of 2: training rows [0, " in train_log
    assert "JAX process 1 of 2: training rows [" in train_log
    assert "process 1 of 2: trained; process 0 writes the model" in train_log
    summaries = [json.loads(line) for line in train_log.splitlines() if line.startswith('{"key"')]
    assert sorted(s["status"] for s in summaries) == ["done", "worker"], summaries
    records = {}
    for path in Path(root, ".loopc", "runs").rglob("*.json"):
        record = json.loads(path.read_text())
        if isinstance(record, dict) and record.get("step") == "train.churn_classifier":
            records[path] = record
    assert [r["status"] for r in records.values()] == ["done"], records  # one record, from process 0
    registry = open_registry(root / ".loopc" / "registry.db")
    assert registry.get_alias("churn_classifier", "champion") is not None
    assert all("failed" not in text for text in logs.values() if "error:" in text), "a step failed"
