"""The split step: which row goes to train, valid or test (one byte per row), and reading one split back."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import (
    ValidatedRows,
    open_rows,
)
from loopc.runtime.data.split import assign_splits, split_columns, split_counts
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.common import SPLITS, read_json, writing
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact

ASSIGNMENT, SPLIT_FILE = "assignment.npy", "split.json"

def run_split(ctx: StepContext) -> dict[str, Any]:
    """Which row goes to train, valid or test: one byte per row (assignment.npy) and the counts.

    Only the split's own column is read; no row is copied.
    """
    validate_id, _ = ctx.upstream_of_kind("validate")
    rows, split = open_rows(ctx.artifact(validate_id)), ctx.config["split"]
    try:
        assignment = assign_splits(_split_input(rows, split), split).astype(np.uint8)
        counts = split_counts(assignment, split)
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    with writing(ctx.out_dir / ASSIGNMENT) as path:
        np.save(path, assignment, allow_pickle=False)
    with writing(ctx.out_dir / SPLIT_FILE) as path:
        atomic_write_json(path, {"format": 1, "split": split, "rows_artifact": ctx.upstream[validate_id]["artifact"],
                                 "counts": counts})
    return {"dataset": ctx.config["dataset_name"], "rows": len(assignment), "split_rows": counts}


def _split_input(rows: ValidatedRows, split: dict) -> pa.Table:
    """The columns a split reads (a row-count placeholder for random); DataError naming a missing one."""
    needed = split_columns(split)
    for name in needed:
        if name not in rows.names:
            raise DataError(f"split method '{split.get('method')}' uses column '{name}', which the table lacks "
                            f"(columns: {', '.join(rows.names)})")
    return rows.read(needed) if needed else pa.table({"row": pa.nulls(rows.num_rows)})


def open_split(state: Path, split_dir: Path) -> tuple[ValidatedRows, np.ndarray, dict]:
    """(the validated rows, the per-row split index, split.json) of a split artifact."""
    record = read_json(split_dir / SPLIT_FILE)
    return open_rows(local_artifact(state, record["rows_artifact"])), np.load(split_dir / ASSIGNMENT, mmap_mode="r"), record


def split_batches(state: Path, split_artifact: str, split: str, columns: list[str]) -> Iterator[pa.Table]:
    """``columns`` of one split's rows, record batch by record batch in row order (the batch size follows
    ``LOOPC_MEMORY_BUDGET``); columns the rows lack are left out. StepFailed names a file that cannot be read."""
    rows, assignment, _ = open_split(state, local_artifact(state, split_artifact))
    index, present = SPLITS.index(split), [c for c in columns if c in rows.names]
    try:
        for offset, batch in rows.batches(present):
            keep = np.asarray(assignment[offset:offset + batch.num_rows]) == index
            if keep.any():
                yield batch.filter(pa.array(keep))
    except DataError as exc:
        raise StepFailed(str(exc)) from None
