"""kill -9 during training, then rerun: finished steps are not redone, the result equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_e2e_loop import make_project, quiet

from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.executor import run_plan

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

# Long enough to be killed mid-way: no early stopping, many short checkpointed epochs.
LONG = ["model.training.epochs=150", "model.training.batch_size=64", "~model.training.early_stopping"]
BEFORE_TRAIN = ("validate.customers", "split.customers", "features.churn_classifier")


def _wait_for_checkpoint(state: Path, proc: subprocess.Popen, timeout_s: float = 300) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if list(state.glob("scratch/*/*/checkpoint/*.npz")):
            return
        if proc.poll() is not None:
            pytest.fail(f"the run ended (exit {proc.returncode}) before the train step wrote a checkpoint")
        time.sleep(0.02)
    pytest.fail("no checkpoint appeared")


def _record(state: Path, run_id: str, step: str) -> dict | None:
    path = state / "runs" / run_id / f"{step}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _run_plan_process(plan: Path, root: Path, run_id: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "loopc.runtime", "run-plan", str(plan), "--root", str(root),
               "--run-id", run_id, "--jobs", "1"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_kill_during_training_then_rerun_equals_an_uninterrupted_run(tmp_path):
    killed = make_project(tmp_path / "killed")
    plan = compile_local(killed / "pipeline.yaml", LONG)[0].train_plan
    state = killed / ".loopc"
    proc = _run_plan_process(plan, killed, "r1")
    _wait_for_checkpoint(state, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _record(state, "r1", "train.churn_classifier") is None, "training finished before the kill"
    before = {step: _record(state, "r1", step)["started_at"] for step in BEFORE_TRAIN}

    rerun = subprocess.run([sys.executable, "-m", "loopc.runtime", "run-plan", str(plan), "--root", str(killed),
                            "--run-id", "r1", "--jobs", "1"], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert {step: _record(state, "r1", step)["started_at"] for step in BEFORE_TRAIN} == before
    resumed = _record(state, "r1", "train.churn_classifier")
    assert resumed["status"] == "done" and resumed["outputs"]["epochs"] == 150
    assert not list(state.glob("scratch/*/*/checkpoint/*.npz")), "the checkpoint outlived the published artifact"

    reference = make_project(tmp_path / "reference")
    for data in (killed / "data").rglob("*"):  # same bytes and mtimes: a source's cache key is its files' metadata
        if data.is_file():
            os.utime(reference / data.relative_to(killed), ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns))
    ref_plan = compile_local(reference / "pipeline.yaml", LONG)[0].train_plan
    uninterrupted = run_plan(ref_plan, reference, "r1", jobs=1, progress=quiet()).records["train.churn_classifier"]
    assert uninterrupted["key"] == resumed["key"]
    ours = np.load(state / resumed["artifact"] / "params.npz")
    theirs = np.load(reference / ".loopc" / uninterrupted["artifact"] / "params.npz")
    assert sorted(ours.files) == sorted(theirs.files)
    for name in ours.files:
        np.testing.assert_array_equal(ours[name], theirs[name])
    evaluated = _record(state, "r1", "evaluate.churn_classifier")["outputs"]["metrics"]
    assert evaluated == _record(reference / ".loopc", "r1", "evaluate.churn_classifier")["outputs"]["metrics"]
