"""Reading a split back: the validated rows, each row's split index, and one split's rows batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import ValidatedRows, open_rows
from loopc.runtime.data.split_record import ASSIGNMENT, SPLITS
from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.steps.files import read_json
from loopc.runtime.steps.split import SPLIT_FILE
from loopc.runtime.store.artifacts import local_artifact


def open_split(state: Path, split_dir: Path) -> tuple[ValidatedRows, np.ndarray, dict]:
    """(the validated rows, the per-row split index, split.json) of a split artifact."""
    record = read_json(split_dir / SPLIT_FILE)
    held_by = local_artifact(state, record["assignment_artifact"]) if "assignment_artifact" in record else split_dir
    return open_rows(local_artifact(state, record["rows_artifact"])), np.load(held_by / ASSIGNMENT, mmap_mode="r"), record


def split_batches(state: Path, split_artifact: str, split: str, columns: list[str]) -> Iterator[pa.Table]:
    """``columns`` of one split's rows, record batch by record batch in row order (the batch size follows
    ``LOOPC_MEMORY_BUDGET``); columns the rows lack are left out. StepFailed names a file that cannot be read."""
    rows, assignment, _ = open_split(state, local_artifact(state, split_artifact))
    return opened_split_batches(rows, assignment, split, columns)


def opened_split_batches(rows: ValidatedRows, assignment: np.ndarray, split: str,
                         columns: list[str]) -> Iterator[pa.Table]:
    """:func:`split_batches` of a split already opened (``open_split``'s rows and assignment)."""
    index, present = SPLITS.index(split), [c for c in columns if c in rows.names]
    try:
        for offset, batch in rows.batches(present):
            keep = np.asarray(assignment[offset:offset + batch.num_rows]) == index
            if keep.any():
                yield batch.filter(pa.array(keep))
    except DataError as exc:
        raise StepFailed(str(exc)) from None
