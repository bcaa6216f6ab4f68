"""Golden files of the Airflow target: every emitted file for churn and demand compared byte for byte.

LOOPC_UPDATE_GOLDEN=1 (``make golden``) rewrites tests/golden/airflow/ for review.
"""

from __future__ import annotations

import pytest
from golden_support import assert_matches_golden
from test_plan_support import example_plans, mask_version

from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import BACKEND

CASES = (("churn", "churn", {}), ("churn_sweep", "churn", {"model": "mlp"}), ("demand", "demand", {}))


@pytest.mark.parametrize("case, example, choices", CASES, ids=[c[0] for c in CASES])
def test_airflow_output_matches_golden_files(case, example, choices):
    files = {path: mask_version(text) for path, text in
             BACKEND.render(example_plans(example, **choices), EmitOptions()).items()}
    assert_matches_golden('airflow', case, files)
