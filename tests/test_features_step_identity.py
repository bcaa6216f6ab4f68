"""The faster profile counting and the blockwise matrix gathers (train's, steps/matrices) give exactly the
previous bytes: the features step's files, the trained params and the reference profile."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from test_data_path import random_table, run_until, write_project

from loopc.runtime.monitor.profile import PointCounts
from loopc.runtime.steps import matrices

STEP_FILES = {"features.m": ["columns.json", "labels.json", "profile_points.json", "transform.json"],
              "train.m": ["params.npz", "profile.json"]}


def searchsorted_add(self: PointCounts, values: np.ndarray) -> None:
    """Every value counted by a search of the points (the reference the grid's counts must equal)."""
    size = len(self.points) + 1
    self.total += len(values)
    self.below += np.bincount(np.searchsorted(self.points, values, side="left"), minlength=size)
    self.at_or_below += np.bincount(np.searchsorted(self.points, values, side="right"), minlength=size)


def step_files(project: Path) -> dict[str, str]:
    """The features and train steps' files of a fresh run, by name: their sha256."""
    records = run_until(project, "train.m")
    return {f"{step}/{name}": hashlib.sha256((project / ".loopc" / records[step]["artifact"] / name).read_bytes())
            .hexdigest() for step, names in STEP_FILES.items() for name in names}


def test_train_writes_the_bytes_of_the_searchsorted_counts_and_whole_batch_gathers(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # batches of 1,024 rows across row groups of 700
    parts = [random_table(2500, 1), random_table(1800, 2)]  # NaN and null floats, integers, categories
    for name in ("before", "after"):
        write_project(tmp_path / name, parts)
    with monkeypatch.context() as patched:
        patched.setattr(PointCounts, "add", searchsorted_add)
        patched.setattr(matrices, "BLOCK_ROWS", 1 << 30)  # each split's rows of a batch in one gather
        before = step_files(tmp_path / "before")
    monkeypatch.setattr(matrices, "BLOCK_ROWS", 100)  # several blocks per split and batch, a ragged last one
    after = step_files(tmp_path / "after")
    assert after == before
    profile = (tmp_path / "after" / ".loopc").glob("artifacts/*/*/profile.json")
    assert '"le":[' in next(profile).read_text(encoding="utf-8")  # numeric columns were counted


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


def test_a_column_keeps_the_grid_tables_and_counts_by_rank_not_by_cell():
    points = np.linspace(-3.0, 3.0, 1001)
    counter = PointCounts(points, points[0], points[-1])
    held = sum(v.nbytes for k, v in vars(counter).items() if isinstance(v, np.ndarray) and k != "points")
    assert held < 300_000  # 65,536 cells: a 2-byte rank and two flags each, and three counts a point


def test_a_column_gets_a_grid_sized_to_its_values_up_to_65536_cells():
    from loopc.runtime.monitor.profile import grid_cells

    assert [grid_cells(n) for n in (0, 1, 1024, 1025, 14_000, 32_768, 32_769, 10**9)] == \
        [1024, 1024, 1024, 2048, 16_384, 32_768, 65_536, 65_536]


@pytest.mark.parametrize("dist", ["lognormal", "pareto", "outlier", "ties"])
def test_skewed_columns_are_counted_exactly_through_the_finer_grids_of_crowded_cells(dist):
    rng = np.random.default_rng(7)
    values = {"lognormal": rng.lognormal(0, 2, 40_000), "pareto": rng.pareto(1.2, 40_000),
              "outlier": np.append(1e9, rng.normal(size=39_999)),  # in the sample: the grid spans it
              "ties": np.round(rng.lognormal(0, 2, 40_000), 2)}[dist]
    points = np.unique(np.quantile(values[:8192], np.linspace(0, 1, 1001)))
    counter = PointCounts(points, points[0], points[-1], by_bits=False)  # the values' grid: skew crowds its cells
    assert counter.fine_start is not None and (counter.fine_start >= 0).any()  # some cell is crowded
    _assert_counted_exactly(counter, values, rng, parts=7)


def _assert_counted_exactly(counter: PointCounts, values: np.ndarray, rng, parts: int, extra=()) -> None:
    """Count ``values``, every point and its neighbours, and live values beyond the reference (``extra`` too) in
    ``parts`` shuffled batches; the counts must equal a search of every value."""
    points = counter.points
    near = np.concatenate([points, np.nextafter(points, -np.inf), np.nextafter(points, np.inf)])
    outside = np.array([points[0] - 1.0, points[-1] * 2 + 1, -1e300, 1e300])  # live values beyond the reference
    everything = np.concatenate([values, near, outside, np.asarray(extra, np.float64)])
    for part in np.array_split(rng.permutation(everything), parts):
        counter.add(part)
    le, lt = counter.counts()
    ordered = np.sort(everything)
    assert le.tolist() == np.searchsorted(ordered, points, side="right").tolist()
    assert lt.tolist() == np.searchsorted(ordered, points, side="left").tolist()
    assert counter.total == len(everything)


SHAPES = {"lognormal": lambda rng, n: rng.lognormal(0, 2, n), "pareto": lambda rng, n: rng.pareto(1.2, n),
          "normal": lambda rng, n: rng.normal(size=n), "both tails": lambda rng, n: rng.standard_cauchy(n),
          "negative lognormal": lambda rng, n: -rng.lognormal(0, 2, n),
          "zeros and tiny": lambda rng, n: np.concatenate([np.zeros(n // 4), -np.zeros(n // 4), rng.normal(
              0, 1e-300, n // 4), rng.lognormal(0, 3, n - 3 * (n // 4))]),
          "ties": lambda rng, n: np.round(rng.lognormal(0, 2, n), 1)}


@pytest.mark.parametrize("by_bits", [True, None], ids=["bits grid", "chosen grid"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_grid_in_the_values_bits_counts_exactly(shape, by_bits):
    rng = np.random.default_rng(11)
    values = SHAPES[shape](rng, 30_000)
    points = np.unique(np.quantile(values[:8192], np.linspace(0, 1, 1001)))
    points = np.unique(np.concatenate([points, [0.0]]))  # 0.0 a point: -0.0 must count as equal to it
    counter = PointCounts(points, points[0], points[-1], by_bits=by_bits)
    _assert_counted_exactly(counter, values, rng, parts=5, extra=[-0.0, 5e-324, -np.finfo(float).max])


@pytest.mark.parametrize(("shape", "bits"), [("lognormal", True), ("pareto", True), ("negative lognormal", True),
                                             ("both tails", True), ("normal", False)])
def test_the_bits_grid_is_chosen_for_skewed_columns_only(shape, bits):
    values = SHAPES[shape](np.random.default_rng(2), 8192)
    points = np.unique(np.quantile(values, np.linspace(0, 1, 1001)))
    counter = PointCounts(points, points[0], points[-1])
    assert counter.by_bits is bits
    cells = counter._cells(values)
    assert np.take(counter.marked, cells).mean() < 0.1  # few values left to compare, either way


def test_float_keys_never_decrease_and_treat_both_zeros_alike():
    from loopc.runtime.monitor.profile import float_keys

    rng = np.random.default_rng(4)
    values = np.sort(np.concatenate([rng.standard_cauchy(5000) * 10.0 ** rng.integers(-300, 300, 5000),
                                     [0.0, -0.0, 5e-324, -5e-324, np.finfo(float).max, -np.finfo(float).max]]))
    keys = float_keys(values)
    assert np.all(np.diff(keys) >= 0)
    assert float_keys(np.array([-0.0]))[0] == float_keys(np.array([0.0]))[0] == 0.0
    floored = float_keys(values, floor=float(np.array([1e-3]).view(np.int64)[0]))
    assert np.all(np.diff(floored) >= 0)
    assert np.all(floored[np.abs(values) <= 1e-3] == 0) and np.all(floored[np.abs(values) > 1e-3] != 0)
    small = values[np.abs(values) < 1e30]
    assert float_keys(small.astype(np.float32)).tolist() == float_keys(small.astype(np.float32).astype(float)).tolist()
    assert float_keys(np.array([1.0, 2.0, 4.0])).tolist() == [4607182418800017408.0, 4611686018427387904.0,
                                                              4616189618054758400.0]  # a binade apart: 2**52 keys
