"""The features step's faster profile counting and blockwise matrix writes give exactly the previous bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from test_data_path import random_table, run_until, write_project

from loopc.runtime.monitor.profile import PointCounts
from loopc.runtime.steps import features as features_step

STEP_FILES = ["columns.json", "labels.json", "profile_sketch.json", "transform.json",
              *(f"{kind}_{split}.{ext}" for split in ("train", "valid", "test")
                for kind, ext in (("x", "npy"), ("y", "npy"), ("slices", "parquet")))]


def searchsorted_add(self: PointCounts, values: np.ndarray) -> None:
    """PointCounts.add before the one-point cells were compared directly (kept here as the reference)."""
    cells = self._cells(values)
    self.by_cell += np.bincount(cells, minlength=self.cells)
    self.total += len(values)
    exact = values[np.take(self.marked, cells)]
    if len(exact):
        size = len(self.points) + 1
        below = np.searchsorted(self.points, exact, side="left")
        at = self.points[np.minimum(below, len(self.points) - 1)] == exact
        self.below += np.bincount(below, minlength=size)
        self.at_or_below += np.bincount(below + at, minlength=size)


def features_files(project: Path) -> dict[str, str]:
    """The features step's files of a fresh run, by name: their sha256."""
    artifact = project / ".loopc" / run_until(project, "features.m")["features.m"]["artifact"]
    return {name: hashlib.sha256((artifact / name).read_bytes()).hexdigest() for name in STEP_FILES}


def test_the_features_step_writes_the_bytes_of_the_searchsorted_counts_and_whole_batch_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # batches of 1,024 rows across row groups of 700
    parts = [random_table(2500, 1), random_table(1800, 2)]  # NaN and null floats, integers, categories
    for name in ("before", "after"):
        write_project(tmp_path / name, parts)
    with monkeypatch.context() as patched:
        patched.setattr(PointCounts, "add", searchsorted_add)
        patched.setattr(features_step, "BLOCK_ROWS", 1 << 30)  # each split's rows of a batch in one write
        before = features_files(tmp_path / "before")
    monkeypatch.setattr(features_step, "BLOCK_ROWS", 100)  # several blocks per split and batch, a ragged last one
    after = features_files(tmp_path / "after")
    assert after == before
    sketch = (tmp_path / "after" / ".loopc").glob("artifacts/*/*/profile_sketch.json")
    assert '"le":[' in next(sketch).read_text(encoding="utf-8")  # numeric columns were counted


@pytest.mark.parametrize("cells", [1, 4, 64, 1 << 16])
def test_point_counts_compare_one_point_cells_directly_and_crowded_ones_by_search(cells):
    points = np.array([-3.0, -1.0, -0.999, -0.998, 0.0, 0.5, 2.0, 2.0000001, 7.0])
    between = (points[1:] + points[:-1]) / 2
    values = np.concatenate([points, points, between, np.nextafter(points, -np.inf), np.nextafter(points, np.inf)])
    values = values[(values >= points[0]) & (values <= points[-1])]
    counter = PointCounts(points, points[0], points[-1], cells)
    assert counter.alone.any() == (cells > 1) and (~counter.alone[counter.marked]).any()  # both kinds of cells
    for part in np.array_split(np.random.default_rng(cells).permutation(values), 4):
        counter.add(part)
    le, lt = counter.counts()
    ordered = np.sort(values)
    assert le.tolist() == np.searchsorted(ordered, points, side="right").tolist()
    assert lt.tolist() == np.searchsorted(ordered, points, side="left").tolist()
