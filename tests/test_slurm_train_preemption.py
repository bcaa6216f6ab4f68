"""Real Slurm: a training job warned (USR1) in the middle of an epoch checkpoints, requeues, resumes at that step."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest

from loopc.compiler.targets.slurm.jobs import parse_fields
from tests.test_slurm_engine import FAST, compile_churn, make_project, submit, wait_jobs

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]


def _signal_once_training(root: Path, job: str, timeout: float = 600) -> None:
    """Once the job has written its first checkpoint (handlers installed, training under way), warn it."""
    deadline = time.monotonic() + timeout
    while not list(root.glob(".loopc/scratch/*/*/checkpoint/checkpoint.json")):
        assert time.monotonic() < deadline, "the training job wrote no checkpoint"
        time.sleep(0.2)
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    while time.monotonic() < deadline:  # requeued: shorten Slurm's ~2 minute hold (see warn_time_limit)
        shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
        if " Restarts=1 " in shown and " JobState=PENDING " in shown:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+15"], check=True)
            return
        time.sleep(0.2)
    pytest.fail(f"job {job} was not requeued")


def test_warned_training_job_checkpoints_mid_epoch_requeues_and_resumes_at_that_step(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_STEPS_PER_CALL", "1")  # submit.sh exports it: a signal stops after one step
    # ~1,500 steps an epoch and 12 epochs: the warning, sent once the first checkpoint exists, lands inside
    # an epoch, not in its end's evaluation and save, and long before training ends even on an idle machine
    root = make_project(tmp_path / "project", rows=4000)
    out = compile_churn(root, ["model.training.batch_size=2", "model.training.epochs=12",
                               "model.training.early_stopping=null", *FAST])
    jobs = submit(out / "churn")
    _signal_once_training(root, jobs["train.churn_classifier"])
    wait_jobs(jobs.values())
    shown = parse_fields(subprocess.run(["scontrol", "show", "job", "-o", jobs["train.churn_classifier"]],
                                        capture_output=True, text=True).stdout)
    assert (shown["JobState"], shown["Restarts"]) == ("COMPLETED", "1")
    log = Path(shown["StdOut"]).read_text()
    stopped = re.search(r"stopped by SIGTERM in epoch (\d+) after step (\d+); checkpoint (\S+) saved", log)
    resumed = re.search(r"resumed from the checkpoint at epoch (\d+), step (\d+)", log)
    assert stopped and resumed, log[-3000:]
    assert stopped.groups()[:2] == resumed.groups(), "the requeued job did not resume at the saved step"
    assert int(stopped.group(2)) > 0, "stopped at an epoch boundary, not mid-epoch"
    assert Path(stopped.group(3)).name == f"checkpoint-{int(stopped.group(1)) - 1:06d}-{int(stopped.group(2)):08d}.npz"
    assert "time limit near: requeueing job" in log
