"""The runtime's entry point allocates Arrow buffers from jemalloc unless the user names a pool."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = ("import pyarrow as pa; from loopc.runtime.__main__ import main; "
          "main(['run-step', 'no-such-step.json']); print(pa.default_memory_pool().backend_name)")


@pytest.mark.parametrize(("named", "expected"), [("", "jemalloc"), ("system", "system"), ("mimalloc", "mimalloc")])
def test_run_step_uses_jemalloc_unless_the_environment_names_a_pool(tmp_path, named, expected):
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if named:
        env["ARROW_DEFAULT_MEMORY_POOL"] = named
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env, capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().splitlines()[-1] == expected
