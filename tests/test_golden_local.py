"""Golden files of the local target: every emitted file compared byte for byte.

LOOPC_UPDATE_GOLDEN=1 (``make golden``) rewrites tests/golden/local/ for review.
"""

from __future__ import annotations

import pytest
from golden_support import assert_matches_golden
from test_plan_support import GOLDEN_CASES, example_plans, mask_version

from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.local.backend import BACKEND


@pytest.mark.parametrize("case, example, choices", GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_local_output_matches_golden_files(case, example, choices):
    files = {path: mask_version(text) for path, text in
             BACKEND.render(example_plans(example, **choices), EmitOptions()).items()}
    assert_matches_golden('local', case, files)
