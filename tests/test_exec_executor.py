"""The local executor on plans of diagnostic ``echo`` steps: order, cache, resume, failure, report."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from loopc.runtime.execution import runs
from loopc.runtime.execution.executor import PlanError, plan_width, run_plan
from loopc.runtime.execution.progress import PlainProgress


def write_plan(folder: Path, steps: dict[str, dict], deps: dict[str, list[str]], kind: str = "train",
               triggers: str | None = None, name: str = "demo", state_dir: str = ".loopc") -> Path:
    """A compiled plan of echo steps in the local target's layout."""
    (folder / "steps").mkdir(parents=True, exist_ok=True)
    entries = []
    for step_id, config in steps.items():
        doc = {"format": 1, "pipeline": "demo", "plan": name, "id": step_id, "kind": "echo", "stage": "x",
               "deps": deps.get(step_id, []), "fingerprint": f"fp-{step_id}-{json.dumps(config, sort_keys=True)}",
               "cacheable": True, "state_dir": state_dir, "spec_hash": "h", "resources": {}, "config": config}
        (folder / "steps" / f"{step_id}.json").write_text(json.dumps(doc), encoding="utf-8")
        entries.append({"id": step_id, "kind": "echo", "stage": "x", "deps": deps.get(step_id, []),
                        "file": f"steps/{step_id}.json", "cacheable": True, "resources": {}})
    plan = {"format": 1, "pipeline": "demo", "plan": name, "kind": kind, "triggers": triggers,
            "state_dir": state_dir, "spec_hash": "h", "steps": entries}
    (folder / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
    return folder / "plan.json"


def quiet() -> PlainProgress:
    return PlainProgress(Console(file=io.StringIO()))


DIAMOND_DEPS = {"b": ["a"], "c": ["a"], "d": ["b", "c"]}


def diamond(tmp_path: Path, **configs) -> Path:
    steps = {name: configs.get(name, {"outputs": {"rows": i}}) for i, name in enumerate("abcd")}
    return write_plan(tmp_path / "compiled" / "demo", steps, DIAMOND_DEPS)


def test_all_steps_run_in_dependency_order_and_rerun_is_cached(tmp_path):
    plan = diamond(tmp_path)
    first = run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet())
    assert first.statuses() == {"a": "done", "b": "done", "c": "done", "d": "done"}
    assert first.records["d"]["outputs"]["upstream"] == ["b", "c"]
    second = run_plan(plan, tmp_path, "r2", jobs=1, progress=quiet())
    assert set(second.statuses().values()) == {"cached"}
    assert second.records["d"]["key"] == first.records["d"]["key"]
    assert (tmp_path / ".loopc" / "runs" / "r1" / "logs" / "a.log").is_file()


def test_parallel_workers_give_the_same_keys_as_serial(tmp_path):
    serial = run_plan(diamond(tmp_path / "s"), tmp_path / "s", "r", jobs=1, progress=quiet())
    parallel = run_plan(diamond(tmp_path / "p"), tmp_path / "p", "r", jobs=2, progress=quiet())
    assert parallel.jobs == 2
    assert {k: r["key"] for k, r in parallel.records.items()} == {k: r["key"] for k, r in serial.records.items()}


def test_a_failed_step_skips_its_dependents_and_resume_retries_it(tmp_path):
    plan = diamond(tmp_path, b={"require": "fixed"})
    result = run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet())
    assert result.statuses() == {"a": "done", "b": "failed", "c": "done", "d": "skipped"}
    assert not result.ok and "needs fixed" in result.records["b"]["message"]
    (tmp_path / "fixed").touch()  # the cause lies outside the plan: the same plan resumes
    resumed = run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet())
    assert resumed.ok
    # a and c finished in r1 before: not executed again (their records are unchanged)
    assert resumed.records["a"]["started_at"] == result.records["a"]["started_at"]
    assert resumed.statuses()["b"] == "done" and resumed.statuses()["d"] == "done"


def test_a_stop_output_skips_dependents_without_failing(tmp_path):
    plan = diamond(tmp_path, b={"stop": "gate rejected"})
    result = run_plan(plan, tmp_path, "r1", jobs=1, progress=quiet())
    assert result.ok
    assert result.statuses() == {"a": "done", "b": "done", "c": "done", "d": "skipped"}
    assert "gate rejected" in result.records["d"]["message"]


def test_report_is_self_contained_html(tmp_path):
    result = run_plan(diamond(tmp_path), tmp_path, "r1", jobs=1, progress=quiet())
    html = result.report.read_text(encoding="utf-8")
    assert result.report == tmp_path / ".loopc" / "runs" / "r1" / "report.html"
    assert "<svg" in html and "r1" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html


def test_monitor_plan_with_retrain_action_runs_its_triggered_plan(tmp_path):
    compiled = tmp_path / "compiled"
    write_plan(compiled / "demo", {"t": {"outputs": {"rows": 3}}}, {})
    monitor = write_plan(compiled / "demo_monitor", {"m": {"outputs": {"action": "retrain"}}}, {},
                         kind="monitor", triggers="demo", name="demo_monitor")
    result = run_plan(monitor, tmp_path, "m1", jobs=1, progress=quiet())
    assert result.triggered is not None and result.triggered.statuses() == {"t": "done"}
    assert result.triggered.run_id != "m1"


def test_monitor_plan_without_breach_triggers_nothing(tmp_path):
    compiled = tmp_path / "compiled"
    write_plan(compiled / "demo", {"t": {}}, {})
    monitor = write_plan(compiled / "demo_monitor", {"m": {"outputs": {"action": "none"}}}, {},
                         kind="monitor", triggers="demo", name="demo_monitor")
    assert run_plan(monitor, tmp_path, "m1", jobs=1, progress=quiet()).triggered is None


def test_plan_width_counts_independent_steps():
    steps = [{"id": "a", "deps": []}, {"id": "b", "deps": ["a"]}, {"id": "c", "deps": ["a"]}]
    assert plan_width(steps) == 2
    assert plan_width(steps[:2]) == 1


def test_a_missing_plan_is_a_clear_error(tmp_path):
    with pytest.raises(PlanError, match="loopc compile"):
        run_plan(tmp_path / "nope.json", tmp_path, "r", progress=quiet())


def test_run_plan_cli_prints_summary_and_exits_1_on_failure(tmp_path):
    plan = diamond(tmp_path, c={"fail": "bad data"})
    proc = subprocess.run([sys.executable, "-m", "loopc.runtime", "run-plan", str(plan), "--root", str(tmp_path),
                           "--run-id", "cli1", "--jobs", "1"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stderr
    assert "failed" in proc.stdout and "report" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert runs.read_record(tmp_path / ".loopc", "cli1", "c")["status"] == "failed"


def test_monitor_alert_is_reported_and_triggers_nothing(tmp_path):
    compiled = tmp_path / "compiled"
    write_plan(compiled / "demo", {"t": {}}, {})
    monitor = write_plan(compiled / "demo_monitor", {"m": {"outputs": {"action": "alert", "summary": "psi high"}}},
                         {}, kind="monitor", triggers="demo", name="demo_monitor")
    result = run_plan(monitor, tmp_path, "m1", jobs=1, progress=quiet())
    assert result.triggered is None
    assert result.notes == ["ALERT from m: psi high"]


def test_a_retrain_triggered_under_loopc_run_id_gets_a_run_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_RUN_ID", "m1")
    compiled = tmp_path / "compiled"
    write_plan(compiled / "demo", {"t": {}}, {})
    monitor = write_plan(compiled / "demo_monitor", {"m": {"outputs": {"action": "retrain"}}}, {},
                         kind="monitor", triggers="demo", name="demo_monitor")
    result = run_plan(monitor, tmp_path, None, jobs=1, progress=quiet())
    assert result.run_id == "m1" and result.triggered.run_id != "m1" and result.triggered.ok


def test_a_plan_whose_entries_or_step_files_do_not_match_is_a_clear_error(tmp_path):
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {}, "b": {}}, {})
    manifest = json.loads(plan.read_text())
    manifest["steps"][1]["file"] = "steps/a.json"
    plan.write_text(json.dumps(manifest))
    with pytest.raises(PlanError, match="holds step 'a', but the plan lists 'b'"):
        run_plan(plan, tmp_path, "r", progress=quiet())
    del manifest["steps"][1]["file"]
    plan.write_text(json.dumps(manifest))
    with pytest.raises(PlanError, match="every step needs an 'id' and a 'file'"):
        run_plan(plan, tmp_path, "r", progress=quiet())
    assert not (tmp_path / ".loopc").exists()  # refused before anything was written


def test_step_depths_and_the_report_layout_share_one_depth_rule():
    from loopc.runtime.execution.report import dag_svg
    from loopc.runtime.execution.step import step_depths

    diamond = [{"id": "a", "kind": "echo", "deps": []}, {"id": "b", "kind": "echo", "deps": ["a"]},
               {"id": "c", "kind": "echo", "deps": ["a"]}, {"id": "d", "kind": "echo", "deps": ["b", "c"]}]
    assert step_depths(diamond) == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert plan_width(diamond) == 2
    boxes = {box["id"]: (box["x"], box["y"]) for box in dag_svg(diamond, {})["boxes"]}
    assert boxes["b"][0] == boxes["c"][0] > boxes["a"][0] and boxes["d"][0] > boxes["b"][0]
    assert boxes["b"][1] < boxes["c"][1] and boxes["a"][1] == boxes["b"][1] == boxes["d"][1]
