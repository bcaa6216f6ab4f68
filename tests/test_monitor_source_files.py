"""A monitor source file that lacks a non-nullable column the monitor reads is an error naming it (its rows
would be read as null and pass as live data), in Parquet read in place and in CSV read whole."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.steps.monitor import _live_batches
from tests.test_data_validate_step import _monitor_context

LIVE = {"id": [1, 2], "plan": ["a", "b"], "note": ["x", "y"]}


def _write(path, table: pa.Table) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    (pq.write_table if path.suffix == ".parquet" else pacsv.write_csv)(table, path)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_a_file_lacking_a_non_nullable_column_is_named(tmp_path, suffix):
    ctx = _monitor_context(tmp_path)
    ctx.config["columns"] = {"id": {"type": "int", "nullable": False}, "plan": {"type": "category", "nullable": False},
                             "note": {"type": "string", "nullable": True}}
    source = {"source": {"path": f"data/*{suffix}"}}
    _write(tmp_path / "data" / f"a{suffix}", pa.table(LIVE))
    _write(tmp_path / "data" / f"b{suffix}", pa.table(LIVE).drop_columns(["note"]))  # nullable: its rows null
    rows = pa.concat_tables(_live_batches(ctx, source, 0.0, ["id", "note", "plan"], ["id", "note", "plan"]))
    assert rows.column("note").to_pylist() == ["x", "y", None, None]
    _write(tmp_path / "data" / f"c{suffix}", pa.table(LIVE).drop_columns(["plan"]))
    with pytest.raises(StepFailed, match=f"monitor 'm': 1 of 3 file\\(s\\) lack column\\(s\\) the monitor reads, "
                                         f"declared not nullable .* e.g. '.*c{suffix}' lacks plan; write every"):
        list(_live_batches(ctx, source, 0.0, ["id", "note", "plan"], ["id", "note", "plan"]))
    assert len(list(_live_batches(ctx, source, 0.0, ["id", "note", "plan"], ["id", "note"]))) >= 1  # not read
