"""Assigning the rows the split step reads itself (a time split, a random split of CSV, a summary validate
abandoned): only the split's own column is read, batch by batch, into a memory-mapped ``assignment.npy``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import ValidatedRows
from loopc.runtime.data.split import assign_random, assign_splits, null_split_values, split_columns
from loopc.runtime.data.split_record import SPLITS, checked_counts


def write_assignment(rows: ValidatedRows, split: dict, path: Path) -> dict[str, int]:
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
