"""The real loop killed -9 inside every registry transaction of register, shadow and promote, then resumed.

After each kill `loopc registry verify` is clean; the resumed run finishes the promotion with no
stale challenger, one registration and one shadow event.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_e2e_loop import SMALL, make_project, run

from loopc.compiler.cli.main import main
from loopc.compiler.cli.run import compile_local
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

MODEL = "churn_classifier"
SECOND = [*SMALL[:-1], "model.training.epochs=13"]  # a different model than the champion's (12 epochs)
# In the order the loop reaches them (set_alias.* is the challenger alias set by register); every point
# inside the promote transaction is killed through the CLI in test_registry_kills.py, more cheaply.
POINTS = ["register.before_commit", "register.after_commit", "set_alias.after_commit", "event.after_insert",
          "event.after_commit", "promote.after_archive", "promote.after_commit"]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[Path, Path]:
    """A project with champion v1 whose second model (13 epochs) is trained and cached but not registered."""
    project = make_project(tmp_path_factory.mktemp("kills") / "churn")
    assert not (project / ".loopc" / "registry.db").exists()
    spec_file = project / "pipeline.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["gate"]["champion"][0]["min_delta"] = -1.0  # the second model passes the gate however it scores
    spec["deploy"]["shadow"]["min_agreement"] = 0.5
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    assert run(project, run_id="first").ok
    plan = compile_local(spec_file, SECOND)[0].train_plan
    assert _run_plan(project, plan, "warm", kill="register.after_insert").returncode == -9
    return project, plan


def _run_plan(project: Path, plan: Path, run_id: str, kill: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "LOOPC_TEST_KILL_AT": kill} if kill else {
        k: v for k, v in os.environ.items() if k != "LOOPC_TEST_KILL_AT"}
    command = [sys.executable, "-m", "loopc.runtime", "run-plan", str(plan), "--root", str(project),
               "--run-id", run_id, "--jobs", "1"]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=600)


def _verify(project: Path, capsys) -> None:
    code = main(["registry", "verify", "--root", str(project)])
    out = capsys.readouterr().out
    assert code == 0, out


@pytest.mark.parametrize("point", POINTS)
def test_loop_killed_in_a_registry_transaction_resumes_clean(base, tmp_path, capsys, point):
    source, plan = base
    project = Path(shutil.copytree(source, tmp_path / "churn", symlinks=True))
    plan = project / plan.relative_to(source)
    killed = _run_plan(project, plan, "second", kill=point)
    assert killed.returncode == -9, f"the loop was not killed at {point}: {killed.stdout[-2000:]} {killed.stderr}"
    _verify(project, capsys)
    resumed = _run_plan(project, plan, "second")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    _verify(project, capsys)
    promote = json.loads((project / ".loopc" / "runs" / "second" / "promote.churn_classifier.json").read_text())
    assert promote["status"] == "done"
    assert (promote["outputs"]["promoted"], promote["outputs"]["previous"]) == (True, 1)  # this run promoted it
    with open_registry(project / ".loopc" / "registry.db", read_only=True) as reg:
        assert reg.aliases(MODEL) == {"archived": 1, CHAMPION: 2}  # no challenger left behind
        log = reg.audit_log(MODEL)
    assert [(e.action, e.version) for e in log if e.action == "register"] == [("register", 1), ("register", 2)]
    assert len([e for e in log if e.action == "shadow"]) == 1
    assert len([e for e in log if e.action == "set_alias" and e.alias == CHAMPION]) == 2


def test_a_truncated_registry_stops_the_loop_and_stays_as_it_is(base, tmp_path):
    source, plan = base
    project = Path(shutil.copytree(source, tmp_path / "churn", symlinks=True))
    db = project / ".loopc" / "registry.db"
    db.write_bytes(b"")
    done = _run_plan(project, project / plan.relative_to(source), "third")
    assert done.returncode == 1
    gate = json.loads((project / ".loopc" / "runs" / "third" / "gate.churn_classifier.json").read_text())
    assert gate["status"] == "failed" and f"registry {db} is an empty file" in gate["message"]
    assert db.stat().st_size == 0
