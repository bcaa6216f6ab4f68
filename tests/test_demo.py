"""`make demo` runs the whole loop on the bundled example: the README's first command must keep working."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_the_demo_trains_a_champion_then_retrains_on_drift(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "loopc.compiler.cli.demo", "--dir", str(tmp_path / "demo")],
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out
    assert "champion: version 1" in out
    assert "action retrain" in out and "retraining outcome:" in out
    assert (tmp_path / "demo" / ".loopc").is_dir()
