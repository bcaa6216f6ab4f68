"""The split step: which row goes to train, valid or test (one byte per row, ``assignment.npy``).

When validate assigned the rows as it read them, the step reads two JSON files and writes one: it imports
neither NumPy nor Arrow (each step is its own process, and they would take most of its time). Reading a split
back is ``split_rows``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.split_record import ASSIGNMENT, SPLITS, checked_counts, read_summary
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.files import writing
from loopc.runtime.store.artifacts import atomic_write_json

SPLIT_FILE = "split.json"


def run_split(ctx: StepContext) -> dict[str, Any]:
    """Which row goes to train, valid or test: one byte per row (assignment.npy) and the counts.

    When validate assigned the rows as it read them (a hash split, or a random split of Parquet files), its
    assignment.npy is used and nothing is read; else only the split's own column is read. No row is copied.
    """
    validate_id, validate_record = ctx.upstream_of_kind("validate")
    split = ctx.config["split"]
    record = {"format": 1, "split": split, "rows_artifact": validate_record["artifact"]}
    summary = read_summary(ctx.artifact(validate_id), split)
    try:
        if summary is not None:  # validate assigned the rows as it read them: nothing is read or written again
            counts = checked_counts([summary.counts[s] for s in SPLITS], split)
            record["assignment_artifact"] = validate_record["artifact"]
        else:
            counts = _assign(ctx.artifact(validate_id), split, ctx.out_dir / ASSIGNMENT)
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    with writing(ctx.out_dir / SPLIT_FILE) as path:
        atomic_write_json(path, {**record, "counts": counts})
    return {"dataset": ctx.config["dataset_name"], "rows": sum(counts.values()), "split_rows": counts}


def _assign(validated: Path, split: dict, path: Path) -> dict[str, int]:
    """Read the split's column of the validated rows and write their assignment to ``path``; the rows per split."""
    from loopc.runtime.data.memory_pool import choose_memory_pool
    from loopc.runtime.data.rows import open_rows  # the rows are read: NumPy and Arrow now
    from loopc.runtime.steps.split_assign import write_assignment

    choose_memory_pool()
    with writing(path):
        return write_assignment(open_rows(validated), split, path)
