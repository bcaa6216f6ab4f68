"""The monitor step and the registry: it creates no registry where none exists, and records a breach once
per run and step even when killed right after the event was committed and resumed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_e2e_loop import MODEL, SMALL, first_run, generate, make_project, project, registry  # noqa: F401

from loopc.compiler.cli.run import compile_local

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


def _monitor_step(project_dir: Path) -> Path:
    plan = compile_local(project_dir / "pipeline.yaml", SMALL)[0].monitor_plan
    return plan.parent / "steps" / "monitor.weekly_drift.json"


def _run_step(step_file: Path, root: Path, run_id: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loopc.runtime", "run-step", str(step_file), "--root", str(root),
                           "--run-id", run_id], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=600, check=False)


def test_monitoring_a_project_without_a_registry_creates_none(tmp_path):
    fresh = make_project(tmp_path / "fresh")
    done = _run_step(_monitor_step(fresh), fresh, "m1")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and "no champion" in summary["outputs"]["summary"]
    assert not (fresh / ".loopc" / "registry.db").exists()


def test_a_breach_is_recorded_once_when_the_monitor_is_killed_after_recording_it(project):  # noqa: F811
    generate(project, "--batch", "1", "--drifted", "--append")
    step = _monitor_step(project)
    killed = _run_step(step, project, "watch", LOOPC_TEST_KILL_AT="event.after_commit")
    assert killed.returncode == -9, killed.stderr
    with registry(project) as reg:
        assert [e.action for e in reg.audit_log(MODEL)].count("monitor_breach") == 1
    resumed = _run_step(step, project, "watch")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["outputs"]["breach"] is True
    with registry(project) as reg:
        assert [e.action for e in reg.audit_log(MODEL)].count("monitor_breach") == 1
        assert reg.verify() == []
