"""Golden files of the Airflow target: every emitted file for churn and demand compared byte for byte.

LOOPC_UPDATE_GOLDEN=1 (``make golden``) rewrites tests/golden/airflow/ for review.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopc.compiler.backends import EmitOptions
from loopc.compiler.backends.airflow import BACKEND
from test_plan_support import example_plans, mask_version

GOLDEN = Path(__file__).resolve().parent / "golden" / "airflow"
CASES = (("churn", "churn", {}), ("churn_sweep", "churn", {"model": "mlp"}), ("demand", "demand", {}))


def _write_golden(folder: Path, files: dict[str, str]) -> None:
    for old in sorted(folder.rglob("*"), reverse=True) if folder.exists() else []:
        old.unlink() if old.is_file() else old.rmdir()
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))


@pytest.mark.parametrize("case, example, choices", CASES, ids=[c[0] for c in CASES])
def test_airflow_output_matches_golden_files(case, example, choices):
    files = {path: mask_version(text) for path, text in
             BACKEND.render(example_plans(example, **choices), EmitOptions()).items()}
    folder = GOLDEN / case
    if os.environ.get("LOOPC_UPDATE_GOLDEN"):
        _write_golden(folder, files)
    expected = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert sorted(expected) == sorted(files), "files differ; review and run `make golden`"
    for path, text in files.items():
        assert text.encode("utf-8") == expected[path], f"{case}/{path} differs; review and run `make golden`"
