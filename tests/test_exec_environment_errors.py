"""A machine fault (full disk, no permission) fails a step with a line naming the file, never "internal error"."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from loopc.runtime.execution.runner import environment_problem, run_step
from loopc.runtime.execution.step import load_step
from tests.test_exec_executor import write_plan


def test_environment_problems_name_the_file_and_leave_bugs_alone():
    full = OSError(errno.ENOSPC, "No space left on device", "/data/x.npy")
    assert environment_problem(full) == ("No space left on device: '/data/x.npy'; "
                                         "free space or fix permissions, then run again")
    assert environment_problem(OSError(errno.EACCES, "Permission denied")).startswith("Permission denied;")
    assert environment_problem(OSError(errno.ENOSPC, "No space left on device"), Path("/s")).startswith(
        "No space left on device (writing under '/s');")
    assert environment_problem(OSError(errno.ENOENT, "No such file or directory", "x")) is None  # may be a bug
    assert environment_problem(ValueError("x")) is None


def test_a_full_disk_inside_a_step_fails_it_naming_the_file(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    plan = write_plan(tmp_path / "compiled" / "demo", {"a": {"write": "x" * 200_000}}, {})
    artifacts = tmp_path / ".loopc" / "artifacts"
    artifacts.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(artifacts)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        record = run_step(load_step(Path(plan).parent / "steps" / "a.json"), tmp_path, "r1")
    finally:
        subprocess.run(["umount", str(artifacts)], check=True)
    assert record["status"] == "failed"
    assert "internal error" not in record["message"]
    assert record["message"].startswith(f"step 'a': No space left on device (writing under '{tmp_path / '.loopc'}')")
