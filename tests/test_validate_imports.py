"""Validating a spec parses its expressions without importing numpy (a re-validate starts a process for one pipeline);
evaluating them imports it on first use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"

VALIDATE = """
import sys
from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors
try:
    load_project(sys.argv[1])
    print("valid", "numpy" in sys.modules)
except SpecErrors as exc:
    print(*sorted({e.code for e in exc.errors}), "numpy" in sys.modules)
"""

EVALUATE = """
from loopc.runtime.data import expressions
first = expressions.{function}
import numpy
columns = {{"a": numpy.array([1.0, float("nan"), 0.0])}}
print(first(columns["a"]).tolist() if first is expressions.truth else first("a * 2 > 1", columns).tolist())
"""


def run(code: str, *argv: str) -> str:
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout.strip()


def test_validating_expressions_imports_no_numpy(tmp_path):
    churn = (EXAMPLES / "churn" / "pipeline.yaml").read_text()
    assert "expr: monthly_charges / (tenure_months + 1)" in churn
    assert run(VALIDATE, str(EXAMPLES / "churn")) == "valid False"
    broken = tmp_path / "churn"
    broken.mkdir()
    for part in ("dataset", "model"):
        (broken / part).mkdir()
        for file in (EXAMPLES / "churn" / part).glob("*.yaml"):
            (broken / part / file.name).write_text(file.read_text())
    (broken / "pipeline.yaml").write_text(churn.replace("(tenure_months + 1)", "(no_such_column + 1)"))
    code, imported = run(VALIDATE, str(broken)).rsplit(" ", 1)
    assert (code, imported) == ("LPC203", "False")  # the expression was parsed and its column refused


def test_evaluating_imports_numpy_on_first_use():
    assert run(EVALUATE.format(function="truth")) == "[True, False, False]"
    assert run(EVALUATE.format(function="evaluate")) == "[True, False, False]"
