"""What a split leaves for later steps, read without NumPy or Arrow (the split step imports only this).

- ``checked_counts``: the rows per split, refused when a split with a positive fraction is empty;
- validate's summary of a split (see ``split_summary``): its files and ``read_summary``, whose samples are
  loaded (with NumPy) only when asked for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from loopc.runtime.data.errors import DataError

SPLITS = ("train", "valid", "test")
FORMAT = 2  # of split_summary.json (1: the samples in an .npz archive, read as no summary: features reads the rows)
ASSIGNMENT, SUMMARY, SAMPLE = "assignment.npy", "split_summary.json", "split_sample.npy"


def checked_counts(counts: Sequence[int], split: dict) -> dict[str, int]:
    """``counts`` (rows per split index) by split name; DataError when a split with a positive
    fraction is empty."""
    sizes = {name: int(counts[index]) for index, name in enumerate(SPLITS)}
    empty = [n for n in SPLITS if split.get(n, 0) > 0 and sizes[n] == 0]
    rows = sum(sizes.values())
    if rows and empty:
        listed = ", ".join(f"{n}={sizes[n]}" for n in SPLITS)
        raise DataError(f"split '{split.get('method')}' left {', '.join(empty)} empty ({listed} of "
                        f"{rows} rows); add rows or change the fractions or the split column")
    return sizes


@dataclass(frozen=True)
class TrainSummary:
    """A validate artifact's summary of one split, read back (``read_summary``)."""

    record: dict
    folder: Path

    @property
    def counts(self) -> dict[str, int]:
        return self.record["counts"]

    def column(self, name: str) -> dict:
        return self.record["columns"].get(name, {})

    def sample(self, name: str) -> Any:
        """The finite values of the train rows the profile's systematic sample picks, a float64 array (None:
        not summarised)."""
        return self._samples.get(name)

    @cached_property
    def _samples(self) -> dict[str, Any]:
        """Every column's sample: slices of the one array, read once."""
        import numpy as np  # here, not above: the split step reads the counts alone and starts without NumPy

        values = np.load(self.folder / SAMPLE)
        bounds = np.cumsum([0, *self.record["sample_sizes"]])
        return {name: values[bounds[i]:bounds[i + 1]] for i, name in enumerate(self.record["sample_columns"])}


def read_summary(folder: Path, split: dict) -> TrainSummary | None:
    """The summary a validate artifact holds of ``split`` (None when it holds none, or one of another split)."""
    path = Path(folder) / SUMMARY
    if not path.exists():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    if record.get("format") != FORMAT or record.get("split") != split:
        return None
    return TrainSummary(record, Path(folder))
