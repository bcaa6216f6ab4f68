"""Runs side by side in one project: each executes the plan it read, one execution per cache key, and
nothing a killed step left is kept or a live one's removed. Barrier files (echo's ``touch``/``wait_for``)
order the processes; no test depends on timing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_exec_executor import quiet, write_plan

from loopc.runtime.execution import runs
from loopc.runtime.execution.cleanup import remove_stale_staging
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.execution.locks import exclusive, try_exclusive
from loopc.runtime.execution.ownership import StateConflict
from loopc.runtime.execution.runner import lock_path, run_step
from loopc.runtime.execution.step import load_step
from loopc.runtime.store.artifacts import open_store


def start_plan(plan: Path, root: Path, run_id: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "loopc.runtime", "run-plan", str(plan), "--root", str(root),
               "--run-id", run_id, "--jobs", "1"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_until(condition, *procs: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` (a barrier another process reaches); fail if a process ends first."""
    deadline = time.monotonic() + 120
    while not condition():
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"process ended (exit {proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, out[-2000:] + err[-2000:]
    return out


def record(root: Path, run_id: str, step: str) -> dict:
    found = runs.read_record(root / ".loopc", run_id, step)
    assert found is not None, f"no record of {step} in run {run_id}"
    return found


# --------------------------------------------------------------------------- one run, one plan


def test_a_run_executes_the_plan_it_read_even_when_its_files_change_meanwhile(tmp_path):
    folder = tmp_path / "compiled" / "demo"
    steps = {"a": {"touch": "a.started", "wait_for": "go"}, "b": {"outputs": {"lr": 1}}}
    plan = write_plan(folder, steps, {"b": ["a"]})
    proc = start_plan(plan, tmp_path, "first")
    wait_until((tmp_path / "a.started").exists, proc, what="step a started")
    write_plan(folder, {**steps, "b": {"outputs": {"lr": 2}}}, {"b": ["a"]})  # recompiled in place
    (tmp_path / "go").touch()
    finish(proc)
    assert record(tmp_path, "first", "b")["outputs"]["lr"] == 1
    later = run_plan(plan, tmp_path, "later", jobs=1, progress=quiet())
    assert later.records["b"]["outputs"]["lr"] == 2


def test_resuming_a_run_with_another_plan_is_refused_as_a_usage_error(tmp_path):
    folder = tmp_path / "compiled" / "demo"
    plan = write_plan(folder, {"a": {"outputs": {"lr": 1}}}, {})
    assert run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet()).ok
    write_plan(folder, {"a": {"outputs": {"lr": 2}}}, {})
    with pytest.raises(runs.RunConflict, match="started with another plan"):
        run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet())
    proc = start_plan(plan, tmp_path, "r1")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "started with another plan" in err and "leave out --run-id" in err
    assert "Traceback" not in err
    assert run_plan(plan, tmp_path, "r2", jobs=1, progress=quiet()).records["a"]["outputs"]["lr"] == 2
    pinned = json.loads((tmp_path / ".loopc" / "runs" / "r1" / runs.RUN_FILE).read_text())
    assert pinned["plan"] == "demo" and pinned["file"] == str(plan)


def test_the_same_plan_resumes_its_run(tmp_path):
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {"require": "fixed"}}, {})
    assert not run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet()).ok
    (tmp_path / "fixed").touch()
    assert run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet()).statuses() == {"a": "done"}


# --------------------------------------------------------------------------- one execution per cache key


def test_concurrent_runs_of_one_step_produce_it_once_and_the_others_report_cached(tmp_path):
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {"touch": "a.started", "wait_for": "go"}, "b": {}},
                      {"b": ["a"]})
    first = start_plan(plan, tmp_path, "first")
    wait_until((tmp_path / "a.started").exists, first, what="the first run produced step a")
    second = start_plan(plan, tmp_path, "second")
    log = tmp_path / ".loopc" / "runs" / "second" / "logs" / "a.log"
    wait_until(lambda: log.exists() and "waiting: another execution" in log.read_text(), second, first,
               what="the second run waited for the first")
    (tmp_path / "go").touch()
    finish(first), finish(second)
    produced, waited = record(tmp_path, "first", "a"), record(tmp_path, "second", "a")
    assert (produced["status"], waited["status"]) == ("done", "cached")
    assert produced["key"] == waited["key"] and produced["artifact"] == waited["artifact"]
    # both reach b at once now: whichever locks it first produces it, the other waits
    assert sorted(record(tmp_path, run_id, "b")["status"] for run_id in ("first", "second")) == ["cached", "done"]
    assert not list((tmp_path / ".loopc" / "locks").glob("*/*.lock")), "a lock file outlived its holder"


def test_a_lock_is_exclusive_and_its_file_goes_with_its_holder(tmp_path):
    path = tmp_path / "locks" / "k.lock"
    with exclusive(path):
        assert path.exists()
        with try_exclusive(path) as taken:
            assert not taken
    assert not path.exists()
    with try_exclusive(path) as taken:
        assert taken
    assert not path.exists()


def test_a_waiter_is_told_once_and_gets_the_lock_after_its_holder(tmp_path):
    path, waiting, order = tmp_path / "k.lock", threading.Event(), []

    def waiter() -> None:
        with exclusive(path, on_wait=waiting.set):
            order.append("waiter")
            with try_exclusive(path) as taken:  # the holder deleted the file it waited on: it locked the new one
                order.append(f"third party got it: {taken}")

    with exclusive(path):
        thread = threading.Thread(target=waiter)
        thread.start()
        assert waiting.wait(60), "the waiter was not told it waits"
        order.append("holder")
    thread.join(60)
    assert order == ["holder", "waiter", "third party got it: False"] and not path.exists()


# --------------------------------------------------------------------------- staging left by killed steps


def _staging(state: Path) -> list[Path]:
    return sorted(state.glob("artifacts/*/.staging-*"))


def test_staging_of_a_killed_step_is_removed_and_a_live_one_is_kept(tmp_path):
    state = tmp_path / ".loopc"
    killed = write_plan(tmp_path / "compiled" / "killed", {"k": {"touch": "k.started", "wait_for": "never"}}, {},
                        name="killed")
    proc = start_plan(killed, tmp_path, "killed")
    wait_until((tmp_path / "k.started").exists, proc, what="the step to be killed started")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)  # reaped, its pipes closed
    [dead] = _staging(state)
    live_plan = write_plan(tmp_path / "compiled" / "live", {"l": {"touch": "l.started", "wait_for": "go"}}, {},
                           name="live")
    live = start_plan(live_plan, tmp_path, "live")
    wait_until((tmp_path / "l.started").exists, live, what="the live step started")
    [alive] = [path for path in _staging(state) if path != dead]

    other = write_plan(tmp_path / "compiled" / "other", {"o": {}}, {}, name="other")
    assert run_plan(other, tmp_path, "other", jobs=1, progress=quiet()).ok  # sweeps on start
    assert not dead.exists() and alive.exists()
    (tmp_path / "go").touch()
    finish(live)
    assert _staging(state) == []


def test_a_step_that_was_killed_cleans_its_own_staging_when_it_runs_again(tmp_path):
    state = tmp_path / ".loopc"
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {"outputs": {"rows": 1}}}, {})
    done = run_plan(plan, tmp_path, "r0", jobs=1, progress=quiet()).records["a"]
    shutil.rmtree(state / done["artifact"])  # as if the run had been killed before publishing
    leftover = state / Path(done["artifact"]).parent / f".staging-{done['key']}-999999-0123abcd"
    leftover.mkdir()
    with exclusive(lock_path(state, done["key"])):
        assert remove_stale_staging(state) == [] and leftover.exists()  # a writer holds the key
        (state / "locks" / "ab").mkdir()
        (state / "locks" / "ab" / f"{'ab' * 32}.lock").touch()  # what a killed holder leaves
    assert remove_stale_staging(state) == sorted([done["key"], "ab" * 32])
    assert not list(state.glob("locks/*/*.lock"))
    shutil.rmtree(state / Path(done["artifact"]).parent)
    leftover.mkdir(parents=True)
    again = run_step(load_step(plan.parent / "steps" / "a.json"), tmp_path, "r1")  # run-step: no sweep first
    assert again["status"] == "done" and not leftover.exists()
    assert open_store(state).leftover_keys() == []


def test_run_step_as_the_schedulers_call_it_also_removes_stale_staging(tmp_path):
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {}}, {})
    dead = tmp_path / ".loopc" / "artifacts" / "cd" / f".staging-{'cd' * 32}-999999-0123abcd"
    dead.mkdir(parents=True)
    step = [sys.executable, "-m", "loopc.runtime", "run-step", str(plan.parent / "steps" / "a.json"),
            "--root", str(tmp_path), "--run-id", "r1"]
    assert subprocess.run(step, capture_output=True, timeout=120).returncode == 0
    assert not dead.exists()


# --------------------------------------------------------------------------- one project per state folder


def _project_plan(root: Path) -> Path:
    return write_plan(root / "compiled" / "demo", {"a": {}}, {}, state_dir="../shared")


def test_a_state_folder_another_project_uses_is_refused(tmp_path):
    first, second = _project_plan(tmp_path / "first"), _project_plan(tmp_path / "second")
    assert run_plan(first, tmp_path / "first", "r1", jobs=1, progress=quiet()).ok
    with pytest.raises(StateConflict, match="belongs to the project at .*first"):
        run_plan(second, tmp_path / "second", "r2", jobs=1, progress=quiet())
    proc = start_plan(second, tmp_path / "second", "r3")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "belongs to the project at" in err and "state_dir" in err
    assert "Traceback" not in err
    step = [sys.executable, "-m", "loopc.runtime", "run-step", str(second.parent / "steps" / "a.json"),
            "--root", str(tmp_path / "second"), "--run-id", "r4"]
    single = subprocess.run(step, capture_output=True, text=True, timeout=120)
    assert single.returncode == 1 and "belongs to the project at" in single.stderr
    assert sorted(p.name for p in (tmp_path / "shared" / "runs").iterdir()) == ["r1"]


def test_a_project_moved_with_its_state_folder_keeps_it(tmp_path):
    assert run_plan(_project_plan(tmp_path / "old" / "p"), tmp_path / "old" / "p", "r1", jobs=1, progress=quiet()).ok
    shutil.move(tmp_path / "old", tmp_path / "new")
    moved = run_plan(tmp_path / "new" / "p" / "compiled" / "demo" / "plan.json", tmp_path / "new" / "p", "r2",
                     jobs=1, progress=quiet())
    assert moved.statuses() == {"a": "cached"}


# --------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("argv, env", [
    (["run-plan", "PLAN", "--run-id", "../escape"], {}),
    (["run-plan", "PLAN"], {"LOOPC_RUN_ID": "has space"}),
    (["run-plan", "PLAN", "--jobs", "0"], {}),
    (["run-step", "STEP", "--run-id", "a/b"], {}),
])
def test_runtime_usage_errors_exit_2(tmp_path, argv, env):
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {}}, {})
    argv = [str(plan) if a == "PLAN" else str(plan.parent / "steps" / "a.json") if a == "STEP" else a for a in argv]
    proc = subprocess.run([sys.executable, "-m", "loopc.runtime", *argv, "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env={**os.environ, **env})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and "Traceback" not in proc.stderr
    assert not (tmp_path / ".loopc" / "runs").exists()
