"""The step document and ``python -m loopc.runtime run-step`` on one step file."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loopc.runtime.execution.step import StepError, load_step


def step_doc(step_id="a", deps=(), **config):
    return {"format": 1, "pipeline": "demo", "plan": "demo", "id": step_id, "kind": "echo", "stage": "x",
            "deps": list(deps), "fingerprint": f"fp-{step_id}", "cacheable": True, "state_dir": ".state",
            "spec_hash": "h", "resources": {"cpus": 1}, "config": config}


def test_load_step_reads_every_field(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(step_doc(deps=["x"], outputs={"n": 1})), encoding="utf-8")
    doc = load_step(path)
    assert (doc.id, doc.kind, doc.deps, doc.state_dir) == ("a", "echo", ("x",), ".state")
    assert doc.config == {"outputs": {"n": 1}} and doc.resources == {"cpus": 1}


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[]", "JSON object"),
    ('{"id": "a"}', "lacks kind"),
    ('{"id": "a", "kind": "echo", "deps": [], "fingerprint": "f", "config": {}, "format": 9}', "format 9"),
])
def test_load_step_rejects_bad_files_clearly(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StepError, match=message):
        load_step(path)


def test_load_step_on_a_missing_file(tmp_path):
    with pytest.raises(StepError, match="cannot read"):
        load_step(tmp_path / "missing.json")


def run_step_cli(tmp_path, path, *extra):
    return subprocess.run([sys.executable, "-m", "loopc.runtime", "run-step", str(path), "--root", str(tmp_path),
                           *extra], capture_output=True, text=True)


def test_run_step_prints_a_json_summary_last_and_caches(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(step_doc(outputs={"rows": 5})), encoding="utf-8")
    first = run_step_cli(tmp_path, path, "--run-id", "r1")
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert summary["status"] == "done" and summary["outputs"]["rows"] == 5 and summary["step"] == "a"
    assert (tmp_path / ".state" / "runs" / "r1" / "a.json").is_file()
    second = run_step_cli(tmp_path, path, "--run-id", "r2")
    assert json.loads(second.stdout.strip().splitlines()[-1])["status"] == "cached"


def test_run_step_needs_its_upstream_in_the_same_run(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(step_doc("b", deps=["a"])), encoding="utf-8")
    proc = run_step_cli(tmp_path, path, "--run-id", "r1")
    assert proc.returncode == 1
    assert "needs 'a'" in proc.stderr and "Traceback" not in proc.stderr


def test_run_step_failure_exits_1_with_the_reason(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(step_doc(fail="column x is missing")), encoding="utf-8")
    proc = run_step_cli(tmp_path, path)
    assert proc.returncode == 1
    assert "column x is missing" in proc.stderr and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "failed"


def test_run_step_on_a_bad_file_exits_1_without_traceback(tmp_path):
    proc = run_step_cli(tmp_path, tmp_path / "missing.json")
    assert proc.returncode == 1 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr
