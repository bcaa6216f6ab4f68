"""What validate learns of a split while it reads the rows: which row goes where, and the train rows' statistics.

A hash split assigns a row by its key alone and a random split by its position among a known row count,
so validate (which decodes every column anyway) can assign the rows and summarise the train rows in its one
read: the split step then reads no column, and the features step fits its transforms and places its profile
points without reading the rows. A time split (its cut times are order statistics of the whole column) is not
summarised, nor a random split of a source whose row count is unknown before it is read (CSV): split and
features read the rows as before. A hash split of such a source is summarised without the profile's sample
(its stride depends on the row count): the profile's numeric columns are then read by features.

Per declared column of the train rows:
- int, float, bool: exact moments of the finite values (``sketch.Moments``), the rows that are null or NaN
  (a feature's missing indicator), the rows null or not finite (the profile's nulls), and the finite values
  of the rows a systematic sample of the train rows picks (the profile's sample);
- bool, string, category: every value's count (booleans as true/false) and the nulls, unless the train rows
  hold more than ``MAX_DISTINCT`` distinct values (then nothing is kept: an id column; its fits read rows).

Files: ``assignment.npy`` (one byte a row: 0 train, 1 valid, 2 test), ``split_summary.json`` and
``split_sample.npy`` in the validate artifact; ``split_record.read_summary`` reads them back.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.sketch import Moments, SystematicSample
from loopc.runtime.data.split import assign_random, assign_splits
from loopc.runtime.data.split_record import ASSIGNMENT, FORMAT, SAMPLE, SPLITS, SUMMARY

MAX_DISTINCT = 10_000  # distinct train values a text column may hold and still be counted
NUMERIC, COUNTED = ("int", "float", "bool"), ("bool", "string", "category")


def summarised(split: dict, rows: int | None) -> bool:
    """Whether validate can assign ``split``'s rows as it reads them (``rows``: the row count known before
    reading, or None)."""
    method = split.get("method", "random")
    return bool(split) and (method == "hash" or (method == "random" and rows is not None))


class _Numeric:
    """One numeric column of the train rows: moments of the finite values, null/NaN rows, the sampled values."""

    def __init__(self) -> None:
        self.moments, self.nan, self.nonfinite, self.sample = Moments(), 0, 0, []

    def add(self, values: np.ndarray, sampled: np.ndarray) -> None:
        """The train rows' values of a batch (a copy this summary may overwrite) and the sampled positions."""
        if not len(values):
            return
        picked = values[sampled]
        low, high = np.minimum.reduce(values), np.maximum.reduce(values)  # NaN when any is NaN
        if np.isfinite(low) and np.isfinite(high):  # the usual batch: every value finite, nothing to drop
            self.sample.append(picked)
            self.moments.update(values, owned=True, bounds=(low, high))
            return
        self.sample.append(picked[np.isfinite(picked)])
        finite = np.isfinite(values)
        clean = values[finite]
        self.nan += int(np.count_nonzero(np.isnan(values)))
        self.nonfinite += len(values) - len(clean)
        self.moments.update(clean, owned=True)

    def record(self) -> dict[str, Any]:
        return {"nan": self.nan, "nonfinite": self.nonfinite, "moments": self.moments.to_dict()}


class _Counts:
    """One text or bool column of the train rows: each value's count and the nulls (None once too many values)."""

    def __init__(self) -> None:
        self.counts: dict[Any, int] | None = {}
        self.nulls = 0

    def add(self, values: pa.Array) -> None:
        if self.counts is None:
            return
        self.nulls += values.null_count
        counted = pc.value_counts(pc.drop_null(values) if values.null_count else values)
        if len(counted) > MAX_DISTINCT:  # an id column: dropped before its values reach Python
            self.counts = None
            return
        for value, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
            self.counts[value] = self.counts.get(value, 0) + count
        if len(self.counts) > MAX_DISTINCT:
            self.counts = None

    def record(self) -> dict[str, Any] | None:
        if self.counts is None:
            return None
        return {"nulls": self.nulls, "values": [[value, count] for value, count in sorted(self.counts.items())]}


class _Replay:
    """A row group's assignment and sampled train rows, as its first column group's batches gave them, handed
    out again for a later column group's batches (which may be cut at other rows)."""

    def __init__(self, group: list[tuple[np.ndarray, np.ndarray]]):
        self.assignment = np.concatenate([a for a, _ in group])
        trains = np.cumsum([0] + [int(np.count_nonzero(a == 0)) for a, _ in group])
        self.sampled = np.concatenate([s + t for (_, s), t in zip(group, trains)])  # sorted train-row positions
        self.rows = self.trains = 0

    def next(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``count`` rows' split indices and the positions of their sampled train rows among theirs."""
        assignment = self.assignment[self.rows:self.rows + count]
        trains = int(np.count_nonzero(assignment == 0))
        lo, hi = np.searchsorted(self.sampled, [self.trains, self.trains + trains])
        picked = self.sampled[lo:hi] - self.trains
        self.rows, self.trains = self.rows + count, self.trains + trains
        return assignment, picked


class _Rows:
    """One batch's train rows, to which the batch's columns are added one by one; distinct columns may be added
    from distinct threads at once (each column's own state, each thread its own scratch buffer)."""

    def __init__(self, summary: SplitSummary, train: np.ndarray, sampled: np.ndarray):
        self.summary, self.sampled = summary, sampled
        # gathering by index is about twice as fast as compress by the mask; each built only when a column needs it
        self.rows = np.flatnonzero(train) if summary.numeric else None
        counting = any(counted.counts is not None for counted in summary.counted.values())  # None stays None
        self.mask = pa.array(train) if counting else None

    def add(self, name: str, array: pa.Array) -> None:
        """A column of the batch (cast to its declared type) into its summary; other columns are ignored."""
        numeric, counted = self.summary.numeric.get(name), self.summary.counted.get(name)
        if numeric is not None:
            values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
            scratch = self.summary.scratch(len(self.rows))
            # mode "wrap": the indices are the batch's own rows; the default ("raise") gathers into a temporary first
            numeric.add(np.take(values, self.rows, out=scratch, mode="wrap"), self.sampled)  # centered in place there
        if counted is not None and counted.counts is not None:  # an id column is filtered once
            counted.add(array.filter(self.mask))


class SplitSummary:
    """Fed every batch validate reads, in the order it reads them (``start``, then each column's ``_Rows.add``);
    ``write`` publishes the result.

    Parquet row groups come in column groups: the split's key is in the first (``key_columns``), whose
    batches assign the rows; later groups' batches of the same rows reuse that assignment.
    """

    def __init__(self, split: dict, columns: dict[str, dict], rows: int | None):
        self.split, self.rows = split, rows
        self.numeric = {n: _Numeric() for n, spec in columns.items() if spec.get("type") in NUMERIC}
        self.counted = {n: _Counts() for n, spec in columns.items() if spec.get("type") in COUNTED}
        self.whole = assign_random(rows, split).astype(np.uint8, copy=False) if split.get("method", "random") == "random" else None
        expected = None if rows is None else int(round(rows * float(split["train"])))
        self.sampler = None if expected is None else SystematicSample(expected)
        self.parts: list[np.ndarray] = []  # the assignment, batch by batch of the first column group
        self.group: list[tuple[np.ndarray, np.ndarray]] = []  # this row group's (assignment, sampled) batches
        self.where, self.part, self.assigned = None, 0, 0
        self.replay: _Replay | None = None
        self.abandoned, self.buffers = False, threading.local()

    @property
    def key_columns(self) -> list[str]:
        return [self.split["key"]] if self.split.get("method") == "hash" else []

    def start(self, where: str, part: int, count: int, keys: dict[str, pa.Array]) -> _Rows | None:
        """Assign a batch of ``count`` rows (the first column group's, by its ``keys`` columns cast to their
        declared types; a later group's, as that group's batches assigned them): its ``_Rows``, to which each
        column of the batch is added, from any thread. None once abandoned: a key that is missing or null
        abandons the summary (the split step reads the rows and says why)."""
        if self.abandoned:
            return None
        if part == 0 and any(k not in keys or keys[k].null_count for k in self.key_columns):
            self.abandoned = True
            return None
        if part == 0:
            if where != self.where:
                self.where, self.group = where, []
            assignment, sampled = self._assign(keys, count)
            self.group.append((assignment, sampled))
        else:
            if part != self.part:  # a later column group of the row group: its rows again, from the first
                self.replay = _Replay(self.group)
            assignment, sampled = self.replay.next(count)
        self.part = part
        return _Rows(self, assignment == 0, sampled)

    def scratch(self, rows: int) -> np.ndarray:
        """A float64 buffer of ``rows`` values for the calling thread, reused batch after batch (fresh pages
        cost a fault each)."""
        buffer = getattr(self.buffers, "values", None)
        if buffer is None or len(buffer) < rows:
            buffer = self.buffers.values = np.empty(rows)
        return buffer[:rows]

    def _assign(self, arrays: dict[str, pa.Array], count: int) -> tuple[np.ndarray, np.ndarray]:
        """This batch's split index a row, and which of its train rows the sample picks (train-row positions)."""
        if self.whole is not None:
            assignment = self.whole[self.assigned:self.assigned + count]
        else:
            key = self.split["key"]
            assignment = assign_splits(pa.table({key: arrays[key]}), self.split).astype(np.uint8, copy=False)
        self.assigned += count
        self.parts.append(assignment)
        trains = int(np.count_nonzero(assignment == 0))
        return assignment, (self.sampler.positions(trains) if self.sampler else np.zeros(0, np.int64))

    def write(self, out_dir: Path) -> bool:
        """assignment.npy, split_summary.json, split_sample.npy into ``out_dir``; False (nothing written)
        when the summary was abandoned or the rows read differ from the footers' count."""
        assignment = np.concatenate(self.parts) if self.parts else np.zeros(0, np.uint8)
        if self.abandoned or (self.rows is not None and len(assignment) != self.rows):
            return False
        counts = {name: int(n) for name, n in zip(SPLITS, np.bincount(assignment, minlength=len(SPLITS)))}
        np.save(out_dir / ASSIGNMENT, assignment)
        columns: dict[str, Any] = {n: {"numeric": c.record()} for n, c in self.numeric.items()}
        for name, counter in self.counted.items():
            columns.setdefault(name, {})["counts"] = counter.record()
        names = sorted(self.numeric)
        samples = [np.concatenate([*self.numeric[n].sample, np.zeros(0)]) for n in names]
        record = {"format": FORMAT, "split": self.split, "counts": counts, "sample_stride": self.sampler.stride if self.sampler else None,
                  "sample_columns": names, "sample_sizes": [len(s) for s in samples], "columns": columns}
        (out_dir / SUMMARY).write_text(json.dumps(record, sort_keys=True), encoding="utf-8")
        np.save(out_dir / SAMPLE, np.concatenate([*samples, np.zeros(0)]))  # one array: one read, no archive
        return True
