"""A step that reads data allocates Arrow buffers from jemalloc unless the user names a pool, Parquet's decoder
included (it allocates from Arrow's own default pool, which only the environment sets); a step that reads none
(a split validate assigned) never imports Arrow or NumPy, whose import would take most of its time."""

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


# what `python -m loopc.runtime` does before a step: main() (here with no command: usage), then the step's module
_DECODER = ("import sys, os; from loopc.runtime.__main__ import main; main([]); "
            "from loopc.runtime.execution.dispatch import step_function; step_function('features'); "
            "import pyarrow as pa, pyarrow.parquet as pq; "
            "rows = sum(b.num_rows for b in pq.ParquetFile('t.parquet', pre_buffer=False, buffer_size=1 << 20)"
            ".iter_batches(10_000, use_threads=True)); "
            "print(os.environ.get('ARROW_DEFAULT_MEMORY_POOL'), rows, pa.mimalloc_memory_pool().max_memory(), "
            "pa.jemalloc_memory_pool().max_memory() > 0)")


def _parquet(tmp_path) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"x": np.arange(200_000.0), "y": np.arange(200_000)}), tmp_path / "t.parquet",
                   row_group_size=50_000)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc is named only on Linux")
def test_a_step_process_decodes_parquet_into_jemalloc_too(tmp_path):
    _parquet(tmp_path)
    assert _run(_DECODER, tmp_path).split() == ["jemalloc", "200000", "0", "True"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc is named only on Linux")
def test_a_pool_the_user_names_is_kept(tmp_path):
    _parquet(tmp_path)
    assert _run(_DECODER, tmp_path, "system").split()[0] == "system"


def test_the_split_step_imports_neither_arrow_nor_numpy(tmp_path):
    assert _run(_IMPORTED, tmp_path) == "[]"
