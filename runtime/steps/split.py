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
from loopc.runtime.data.split import (
    assign_random,
    assign_splits,
    checked_counts,
    null_split_values,
    split_columns,
)
from loopc.runtime.data.split_summary import ASSIGNMENT, read_summary
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.common import SPLITS, read_json, writing
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact

SPLIT_FILE = "split.json"

def run_split(ctx: StepContext) -> dict[str, Any]:
    """Which row goes to train, valid or test: one byte per row (assignment.npy) and the counts.

    When validate assigned the rows as it read them (a hash split, or a random split of Parquet files), its
    assignment.npy is used and nothing is read; else only the split's own column is read. No row is copied.
    """
    validate_id, validate_record = ctx.upstream_of_kind("validate")
    rows, split = open_rows(ctx.artifact(validate_id)), ctx.config["split"]
    record = {"format": 1, "split": split, "rows_artifact": validate_record["artifact"]}
    summary = read_summary(ctx.artifact(validate_id), split)
    try:
        if summary is not None:  # validate assigned the rows as it read them: nothing is read or written again
            counts = checked_counts(np.array([summary.counts[s] for s in SPLITS]), split)
            record["assignment_artifact"] = validate_record["artifact"]
        else:
            with writing(ctx.out_dir / ASSIGNMENT) as path:
                counts = _write_assignment(rows, split, path)
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    with writing(ctx.out_dir / SPLIT_FILE) as path:
        atomic_write_json(path, {**record, "counts": counts})
    return {"dataset": ctx.config["dataset_name"], "rows": rows.num_rows, "split_rows": counts}


def _write_assignment(rows: ValidatedRows, split: dict, path: Path) -> dict[str, int]:
    """assignment.npy (uint8 a row) filled part by part in row order; the rows per split."""
    assignment = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows.num_rows,))
    counts = np.zeros(len(SPLITS), np.int64)
    for offset, part in _split_input(rows, split):
        assignment[offset:offset + len(part)] = part
        counts += np.bincount(part, minlength=len(SPLITS))
    assignment.flush()
    del assignment
    return checked_counts(counts, split)


def _split_input(rows: ValidatedRows, split: dict) -> Iterator[tuple[int, np.ndarray]]:
    """(offset, split index a row) in row order; DataError naming a missing or null split column.

    A hash split reads its key column batch by batch (a row's side depends on its key alone);
    a time split reads its column whole (its cut times are order statistics of every value) and
    a random split reads nothing (a permutation of the row count).
    """
    needed = split_columns(split)
    for name in needed:
        if name not in rows.names:
            raise DataError(f"split method '{split.get('method')}' uses column '{name}', which the table lacks "
                            f"(columns: {', '.join(rows.names)})")
    if split.get("method", "random") == "random":
        yield 0, assign_random(rows.num_rows, split).astype(np.uint8)
        return
    if split.get("method") != "hash":
        yield 0, assign_splits(rows.read(needed), split).astype(np.uint8)
        return
    batches = rows.batches(needed)
    for offset, batch in batches:
        if batch.column(0).null_count:  # every null counted, the rest of the column read for it
            raise null_split_values(needed[0], batch.column(0).null_count + sum(b.column(0).null_count
                                                                                 for _, b in batches))
        yield offset, assign_splits(batch, split).astype(np.uint8)


def open_split(state: Path, split_dir: Path) -> tuple[ValidatedRows, np.ndarray, dict]:
    """(the validated rows, the per-row split index, split.json) of a split artifact."""
    record = read_json(split_dir / SPLIT_FILE)
    held_by = local_artifact(state, record["assignment_artifact"]) if "assignment_artifact" in record else split_dir
    return open_rows(local_artifact(state, record["rows_artifact"])), np.load(held_by / ASSIGNMENT, mmap_mode="r"), record


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
