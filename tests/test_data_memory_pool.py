"""A step that reads data allocates Arrow buffers from jemalloc unless the user names a pool; a step that reads
none (a split validate assigned) never imports Arrow or NumPy, whose import would take most of its time."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

_PROBE = ("import sys; from loopc.runtime.execution.dispatch import step_function; step_function(sys.argv[1]); "
          "import pyarrow as pa; print(pa.default_memory_pool().backend_name)")
_IMPORTED = ("import sys; from loopc.runtime.execution.dispatch import step_function; step_function('split'); "
             "print(sorted(m for m in ('numpy', 'pyarrow') if m in sys.modules))")


def _run(code: str, tmp_path, named: str = "", *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    if named:
        env["ARROW_DEFAULT_MEMORY_POOL"] = named
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize(("named", "expected"), [("", "jemalloc"), ("system", "system"), ("mimalloc", "mimalloc")])
def test_a_data_step_uses_jemalloc_unless_the_environment_names_a_pool(tmp_path, named, expected):
    assert _run(_PROBE, tmp_path, named, "features") == expected


def test_the_split_step_imports_neither_arrow_nor_numpy(tmp_path):
    assert _run(_IMPORTED, tmp_path) == "[]"
