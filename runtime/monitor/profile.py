"""Reference profiles: a compact, JSON-able summary of training data that drift is measured against."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.parallel import map_columns
from loopc.runtime.data.sketch import SAMPLE_ROWS, Moments, SystematicSample, inverted_cdf

PROFILE_FORMAT = 1
QUANTILES = 1001  # sketch resolution: the KS statistic is exact to within ~1/(QUANTILES-1)
PSI_BINS = 10
MAX_CATEGORIES = 1000
GRID_CELLS = 1 << 16  # about 4% of normal values share a cell with one of 1,001 points
FINE_CELLS_PER_POINT = 64  # a crowded cell's finer grid: the power of two at or above 64 cells a point in it
BITS_GAIN_NEEDED = 2.0  # a grid in the values' bits is taken when it leaves half as many values to compare, or fewer
NUMERIC_TYPES = ("int", "float", "timestamp", "date")
CATEGORICAL_TYPES = ("bool", "string", "category")


class ProfileError(ValueError):
    """A column cannot be profiled (missing, wrong type); the message says which and how to fix it."""


def column_kind(name: str, spec: dict[str, Any], arrow_type: pa.DataType) -> str:
    """``numeric`` or ``categorical`` from the column spec's type, else from the Arrow type."""
    declared = spec.get("type")
    if declared in NUMERIC_TYPES:
        return "numeric"
    if declared in CATEGORICAL_TYPES:
        return "categorical"
    if declared is not None:
        raise ProfileError(f"column '{name}': type '{declared}' cannot be profiled; use one of "
                           f"{', '.join(NUMERIC_TYPES + CATEGORICAL_TYPES)}")  # fmt: skip
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_temporal(arrow_type)
    return "numeric" if numeric and not pa.types.is_boolean(arrow_type) else "categorical"


def numeric_values(column: pa.ChunkedArray | pa.Array, name: str = "?") -> tuple[np.ndarray, int]:
    """Finite values as float64 (timestamps and dates as their integer encoding), and the null count."""
    kind = column.type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind)
            or pa.types.is_decimal(kind) or pa.types.is_boolean(kind)):  # fmt: skip
        raise ProfileError(f"column '{name}' holds {kind}, not numbers; fix the data or declare the column's type")
    if pa.types.is_decimal(kind) or pa.types.is_boolean(kind):
        column = pc.cast(column, pa.float64())
    if pa.types.is_temporal(column.type):
        column = pc.cast(column, pa.int64()) if not pa.types.is_date32(column.type) else pc.cast(column, pa.int32())
    total = len(column)
    if column.null_count:
        column = pc.drop_null(column)
    values = np.asarray(column.to_numpy(), dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        values = values[finite]
    return values, total - len(values)


def category_key(value: Any) -> str:
    """How a category is named in profiles: booleans as true/false, everything else as str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def category_counts(column: pa.ChunkedArray | pa.Array) -> tuple[dict[str, int], int]:
    """Counts per category key and the null count, computed by Arrow (no Python loop over rows).

    Dictionary-encoded columns (Parquet's usual encoding of strings) are counted by index, 3x faster.
    """
    nulls = column.null_count
    counted = pc.value_counts(pc.drop_null(column) if nulls else column)
    keys = [category_key(v) for v in counted.field("values").to_pylist()]
    counts = counted.field("counts").to_numpy()
    result: dict[str, int] = {}
    for key, count in zip(keys, counts.tolist()):
        result[key] = result.get(key, 0) + int(count)
    return result, nulls


def grid_cells(values: int) -> int:
    """Cells of the counting grid of a column of ``values`` values: the power of two at or above, from 1,024 up to
    GRID_CELLS. The grid decides only how many values are compared one by one, never a count; a short column of a
    wide table needs no 65,536 cells (0.55 ms a column to build, against 0.04 ms for 16,384)."""
    return int(min(GRID_CELLS, max(1 << 10, 1 << max(int(values) - 1, 0).bit_length())))


def float_keys(values: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """A float64 key of each finite float64 value, never decreasing as the value grows (-0.0 and 0.0 alike):
    the magnitude's IEEE bits read as an integer, less ``floor`` (the bits of a magnitude below which every
    value's key is 0), with the value's sign. Keys are close to uniform in log |value|: a grid uniform in keys
    spreads a skewed column's quantiles over its cells, and the floor keeps the binades between a column's
    smallest magnitude and zero out of it."""
    keys = np.abs(values, dtype=np.float64).view(np.int64).astype(np.float64)  # float64 bits whatever came in
    if floor:
        keys -= floor
        np.maximum(keys, 0.0, out=keys)
    return np.copysign(keys, values, out=keys)


def marked_share(point_cells: np.ndarray) -> float:
    """About the share of a column's values that lie in cells holding a point, for points at its quantiles
    placed in ``point_cells``: between two points k cells apart, the 2 of k + 1 cells that hold them."""
    gaps = np.diff(point_cells)
    return float(np.mean(np.minimum(1.0, 2.0 / (gaps + 1.0)))) if len(gaps) else 0.0


def _points_below(point_cells: np.ndarray, cells: int) -> np.ndarray:
    """For each of ``cells`` cells (and one past the last), how many points lie in lower cells (``point_cells``:
    each point's cell): a cell's first point, and with the next cell's, how many it holds."""
    below = np.zeros(cells + 1, np.intp)
    np.cumsum(np.bincount(point_cells, minlength=cells), out=below[1:])
    return below


class PointCounts:
    """Exact counts of values ``<=`` and ``<`` each of sorted distinct ``points``, added batch by batch.

    A value's cell on a uniform grid of ``cells`` over [low, high] is monotone in the value, so a
    value alone in its cell (no point there) lies above every point of a lower cell and below every
    point of a higher one: its rank among the points is the cell's, looked up and counted by rank.
    The grid is uniform in the values, or in their bits (``float_keys``, close to log |value|, as monotone)
    when that leaves at most half as many values sharing a cell with a point (``marked_share``): a lognormal's.
    A cell holding several points (a skewed column's crowded bulk: most of a lognormal's points share a few
    cells of a uniform grid) has a finer uniform grid of its own, looked up the same way. Only values sharing
    a (finer) cell with a point are compared exactly: with that point when it is the cell's only one, else by
    ``np.searchsorted``. A column keeps the grids' tables (about 0.25 MB; twice that when some cell is
    crowded) and counts by rank, not by cell.
    """

    def __init__(self, points: np.ndarray, low: float, high: float, cells: int = GRID_CELLS,
                 by_bits: bool | None = None):
        self.points, self.cells = points, cells
        linear = self._use(False, low, high)  # the values' own grid, unless their bits' leaves half as many to compare
        if by_bits is None:
            by_bits = len(points) > 2 and marked_share(self._use(True, low, high)) * BITS_GAIN_NEEDED < marked_share(linear)
        point_cells = self._use(by_bits, low, high)
        self.marked = np.zeros(cells, bool)
        self.marked[point_cells] = True
        first = _points_below(point_cells, cells)
        rank_type = np.int16 if len(points) < np.iinfo(np.int16).max else np.int32
        self.rank, self.alone = first[:-1].astype(rank_type), np.diff(first) == 1  # a cell's first point; one there
        self.fine_start = None  # per cell: where its finer grid starts in the fine_* tables, -1 for none
        self._fine_grids(first, rank_type)
        size = len(points) + 1
        self.ranked = np.zeros(size, np.int64)  # values of cells without a point, by how many points are below them
        self.below = np.zeros(size, np.int64)  # exactly compared values by how many points are < them
        self.at_or_below = np.zeros(size, np.int64)  # ... and by how many are <= them
        self.total = 0

    def _fine_grids(self, first: np.ndarray, rank_type: type) -> None:
        """A grid of FINE_CELLS_PER_POINT cells a point (a power of two, at most GRID_CELLS) in each crowded cell."""
        crowded = np.flatnonzero(np.diff(first) > 1)
        if not len(crowded):
            return
        scaled = self._scaled(self.points)
        self.fine_start = np.full(self.cells, -1, np.int32)
        self.fine_size = np.zeros(self.cells, np.int32)
        ranks, start = [], 0
        for cell in crowded:
            lo, hi = first[cell], first[cell + 1]
            size = int(min(GRID_CELLS, 1 << (FINE_CELLS_PER_POINT * int(hi - lo) - 1).bit_length()))
            fine = self._fine_cells(scaled[lo:hi], np.full(hi - lo, cell), np.full(hi - lo, size))
            ranks.append(lo + _points_below(fine, size))
            self.fine_start[cell], self.fine_size[cell] = start, size
            start += size
        self.fine_rank = np.concatenate([r[:-1] for r in ranks]).astype(rank_type)
        counts = np.concatenate([np.diff(r) for r in ranks])
        self.fine_marked, self.fine_alone = counts > 0, counts == 1

    def _use(self, by_bits: bool, low: float, high: float) -> np.ndarray:
        """Place the grid over [low, high] in the values' space, or in their bits' (``float_keys``, floored at the
        smallest magnitude of a point) over the inner points (a zero or an outlier at either end would stretch it
        over empty binades: what lies beyond goes to the end cells, which hold two points and are compared
        exactly); the points' cells."""
        self.by_bits, self.floor = by_bits, 0.0
        if by_bits:
            if (self.points < 0).any() and (self.points > 0).any():  # no gap of empty binades between the signs:
                smallest = np.abs(self.points[self.points != 0]).min(keepdims=True)  # a point whose key is then 0
                self.floor = float(float_keys(smallest)[0])
            inner = self.points[1:-1] if len(self.points) > 3 else np.array([low, high], np.float64)
            low, high = (float(k) for k in float_keys(inner[[0, -1]], self.floor))
        scale = self.cells / (high - low) if high > low else 0.0
        self.low, self.scale = low, scale if np.isfinite(scale) else 0.0
        return self._cells(self.points)

    def _scaled(self, values: np.ndarray) -> np.ndarray:
        """The values on the grid's scale (cell c holds [c, c + 1)), not clipped: the one computation of it."""
        with np.errstate(over="ignore"):  # a live value far beyond the reference: +-inf, clipped to an end cell
            scaled = float_keys(values, self.floor) if self.by_bits else np.subtract(values, self.low)
            if self.by_bits:
                scaled -= self.low
            scaled *= self.scale
        return scaled

    def _cells(self, values: np.ndarray) -> np.ndarray:
        if not self.scale:  # one cell's width holds everything (low == high): all in the first
            return np.zeros(len(values), np.intp)
        scaled = self._scaled(values)
        np.clip(scaled, 0, self.cells - 1, out=scaled)
        cells = np.empty(len(values), np.intp)  # the index type: no copy where it indexes
        np.copyto(cells, scaled, casting="unsafe")  # truncates, like astype
        return cells

    @staticmethod
    def _fine_cells(scaled: np.ndarray, cells: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Each value's cell on its cell's finer grid of ``sizes`` cells: monotone in the value within a cell (a value
        clipped into the first or last cell goes to the first or last finer cell)."""
        fine = np.floor((scaled - cells) * sizes)
        np.clip(fine, 0, sizes - 1, out=fine)
        return fine.astype(np.intp)

    def add(self, values: np.ndarray) -> None:
        """Count finite float64 values."""
        cells = self._cells(values)
        ranks = np.take(self.rank, cells)
        size = len(self.points) + 1
        self.ranked += np.bincount(ranks, minlength=size)  # every value, then the exactly compared ones back out
        self.total += len(values)
        exact = np.flatnonzero(np.take(self.marked, cells))
        if not len(exact):
            return
        ranks, cells, values = ranks.take(exact), cells.take(exact), values.take(exact)
        self.ranked -= np.bincount(ranks, minlength=size)
        below, alone = ranks.astype(np.intp), np.take(self.alone, cells)
        if self.fine_start is not None:
            values, below, alone = self._refine(values, cells, below, alone)
        self._add_exact(values, below, alone)

    def _refine(self, values: np.ndarray, cells: np.ndarray, below: np.ndarray,
                alone: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values of crowded cells placed on their cell's finer grid: those alone in a finer cell are counted by its
        rank; the rest go on to be compared (``below``: their finer cell's first point, ``alone``: its only one)."""
        starts = np.take(self.fine_start, cells)
        deep = np.flatnonzero(starts >= 0)
        if not len(deep):
            return values, below, alone
        fine = starts[deep] + self._fine_cells(self._scaled(values[deep]), cells[deep],
                                               np.take(self.fine_size, cells[deep]))
        ranks = np.take(self.fine_rank, fine)
        marked = np.take(self.fine_marked, fine)
        self.ranked += np.bincount(ranks[~marked], minlength=len(self.points) + 1)
        below[deep], alone[deep] = ranks, np.take(self.fine_alone, fine)
        keep = np.ones(len(values), bool)
        keep[deep[~marked]] = False
        return values[keep], below[keep], alone[keep]

    def _add_exact(self, values: np.ndarray, below: np.ndarray, alone: np.ndarray) -> None:
        """Count values that share their (finer) cell with a point (``below``: the index of the cell's first point;
        ``alone``: it is the cell's only point), by how many points are below and at or below them."""
        nearest = self.points[below]
        at_or_below = below + (nearest <= values)
        below += nearest < values
        crowded = ~alone
        if crowded.any():
            below[crowded] = np.searchsorted(self.points, values[crowded], side="left")
            at_or_below[crowded] = np.searchsorted(self.points, values[crowded], side="right")
        size = len(self.points) + 1
        self.below += np.bincount(below, minlength=size)
        self.at_or_below += np.bincount(at_or_below, minlength=size)

    def counts(self) -> tuple[np.ndarray, np.ndarray]:
        """(values <= each point, values < each point)."""
        le = np.cumsum(self.below + self.ranked)[:-1]
        lt = np.cumsum(self.at_or_below + self.ranked)[:-1]
        return le, lt


class NumericColumn:
    """One numeric column's sketch, made in two passes over the same rows: ``observe`` every batch
    (exact moments, nulls, the sampled rows' values), then ``count`` every batch (exact counts at
    points placed at the sample's quantiles, and at the exact min and max)."""

    def __init__(self, quantiles: int = QUANTILES, psi_bins: int = PSI_BINS):
        self.quantiles, self.psi_bins = quantiles, psi_bins
        self.moments, self.nulls, self.sample = Moments(), 0, []
        self.points = self.edges = self.grid = self.counter = None  # placed after the first pass, counter at the second

    def observe(self, values: np.ndarray, nulls: int, sampled: np.ndarray) -> None:
        """Finite values of a batch, its null (and non-finite) count, the finite values of its sampled rows."""
        self.moments.update(values)
        self.nulls += int(nulls)
        self.sample.append(sampled)

    def count(self, values: np.ndarray) -> None:
        """The same finite values again (any batching and order)."""
        if not self.moments.count:
            return
        if self.points is None:
            self._place_points()
        if self.counter is None:  # built here, not with the points: a sketch observed only (features) never counts
            self.counter = PointCounts(self.grid, self.moments.low, self.moments.high, grid_cells(self.moments.count))
        self.counter.add(values)

    def _place_points(self) -> None:
        low, high, psi_bins = self.moments.low, self.moments.high, self.psi_bins
        ordered = np.sort(np.concatenate([*self.sample, []]))
        ordered = ordered if len(ordered) else np.array([low, high])  # every sampled row was null
        self.sample = []
        levels = np.linspace(0.0, 1.0, self.quantiles)
        self._use_points(np.unique(np.concatenate([[low, high], inverted_cdf(ordered, levels)])),
                         np.unique(inverted_cdf(ordered, np.linspace(0.0, 1.0, psi_bins + 1)[1:-1])))

    def _use_points(self, points: np.ndarray, edges: np.ndarray) -> None:
        """Count at ``points`` (the quantile sketch) and ``edges`` (the PSI bins) from now on."""
        self.points, self.edges = points, edges
        self.grid = np.unique(np.concatenate([points, edges]))

    def place_points(self) -> None:
        """Place the points from the sample (once; nothing to place without values)."""
        if self.moments.count and self.points is None:
            self._place_points()

    def observed(self) -> dict:
        """The first pass's state with the points placed (JSON-able; floats round-trip exactly): what
        :meth:`from_observed` rebuilds a counter from, so a later process can ``count``."""
        self.place_points()
        placed = self.points is not None
        return {"kind": "numeric", "nulls": self.nulls, "moments": self.moments.to_dict(),
                "points": self.points.tolist() if placed else [], "edges": self.edges.tolist() if placed else []}

    @classmethod
    def from_observed(cls, state: dict) -> NumericColumn:
        """A column ready to ``count``, from :meth:`observed`'s state."""
        column = cls()
        column.nulls, column.moments = int(state["nulls"]), Moments.from_dict(state["moments"])
        if column.moments.count:
            column._use_points(np.asarray(state["points"], np.float64), np.asarray(state["edges"], np.float64))
        return column

    def sketch(self) -> dict:
        n, nulls = self.moments.count, self.nulls
        base = {"kind": "numeric", "count": n, "nulls": nulls, "null_rate": _rate(nulls, n + nulls)}
        if n == 0:
            return {**base, "mean": None, "std": None, "min": None, "max": None, "points": [], "le": [], "lt": [],
                    "psi_edges": [], "psi_ref": []}  # fmt: skip
        if self.counter is None or self.counter.total != n:
            raise ProfileError(f"a numeric sketch counted {0 if self.counter is None else self.counter.total} "
                               f"values in its second pass, {n} in its first: the rows changed while they were read")
        le, lt = self.counter.counts()
        at_points, at_edges = np.searchsorted(self.grid, self.points), np.searchsorted(self.grid, self.edges)
        psi_ref = np.diff(np.concatenate([[0], le[at_edges], [n]])) / n
        return {**base, "mean": self.moments.mean, "std": self.moments.std, "min": self.moments.low,
                "max": self.moments.high, "points": self.points.tolist(), "le": le[at_points].tolist(),
                "lt": lt[at_points].tolist(), "psi_edges": self.edges.tolist(), "psi_ref": psi_ref.tolist()}


def numeric_sketch(values: np.ndarray, nulls: int, *, quantiles: int = QUANTILES, psi_bins: int = PSI_BINS,
                   sample_rows: int = SAMPLE_ROWS) -> dict:
    """The quantile sketch of one numeric column's finite values (see :func:`build_profile`)."""
    column = NumericColumn(quantiles, psi_bins)
    column.observe(values, nulls, values[SystematicSample(len(values), sample_rows).positions(len(values))])
    column.count(values)
    return column.sketch()


def categorical_sketch(counts: dict[str, int], nulls: int, *, max_categories: int = MAX_CATEGORIES) -> dict:
    """Category counts of one column: the ``max_categories`` most frequent, the rest in ``other``."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = dict(sorted(ranked[:max_categories]))
    total = sum(counts.values())
    return {
        "kind": "categorical",
        "count": total,
        "nulls": int(nulls),
        "null_rate": _rate(nulls, total + nulls),
        "categories": kept,
        "other": int(sum(count for _, count in ranked[max_categories:])),
    }


def _rate(part: int, whole: int) -> float:
    return float(part / whole) if whole else 0.0


def prediction_values(predictions: np.ndarray) -> tuple[np.ndarray, str]:
    """Predictions as one number per row: the score itself, or the argmax class of a [rows, k] matrix."""
    array = np.asarray(predictions, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] > 1:
        return np.argmax(array, axis=1).astype(np.float64), "class"
    return array.reshape(-1), "score"


class CategoricalColumn:
    """One categorical column's counts, added batch by batch."""

    def __init__(self, max_categories: int = MAX_CATEGORIES):
        self.max_categories, self.counts, self.nulls = max_categories, {}, 0

    def observe(self, column: pa.ChunkedArray | pa.Array) -> None:
        counts, nulls = category_counts(column)
        for key, count in counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        self.nulls += nulls

    def sketch(self) -> dict:
        return categorical_sketch(self.counts, self.nulls, max_categories=self.max_categories)


class CountedColumn:
    """A categorical column's final sketch, as a rebuilt :class:`ProfileSketch` keeps it (nothing to count)."""

    def __init__(self, sketch: dict):
        self.final = {key: value for key, value in sketch.items() if key != "type"}

    def sketch(self) -> dict:
        return dict(self.final)


class ProfileSketch:
    """The sketches of ``columns`` (name -> column spec dict) of a stream of ``rows`` rows, in two passes:
    ``observe`` every batch, then ``count`` every batch again (numeric columns only; any batching).
    Memory: the sample (``sample_rows`` values per numeric column) and the counts, not the rows."""

    def __init__(self, columns: dict[str, dict[str, Any]], rows: int, *, quantiles: int = QUANTILES,
                 psi_bins: int = PSI_BINS, max_categories: int = MAX_CATEGORIES, sample_rows: int = SAMPLE_ROWS,
                 threads: int | None = None):
        self.specs, self.threads, self.types, self.rows = columns, threads, {}, rows
        self.sample = SystematicSample(rows, sample_rows)
        self.options = {"quantiles": quantiles, "psi_bins": psi_bins, "max_categories": max_categories}
        self.columns: dict[str, NumericColumn | CategoricalColumn | CountedColumn] = {}

    @property
    def numeric(self) -> list[str]:
        """The numeric columns (known after the first ``observe``): those ``count`` needs."""
        return [name for name, column in self.columns.items() if isinstance(column, NumericColumn)]

    def observe(self, table: pa.Table) -> None:
        """First pass: one batch of the rows, in order."""
        positions = self.sample.positions(table.num_rows)
        if not self.columns:
            self._start(table)

        def observe(name: str) -> None:
            column = table.column(name)
            if isinstance(self.columns[name], CategoricalColumn):
                return self.columns[name].observe(column)
            values, nulls = numeric_values(column, name)
            self.columns[name].observe(values, nulls, numeric_values(column.take(positions), name)[0])

        map_columns(observe, sorted(self.columns), self.threads)

    def count(self, table: pa.Table) -> None:
        """Second pass: a batch of the same rows (any batching and order), with (at least) the numeric columns."""
        map_columns(lambda name: self.columns[name].count(numeric_values(table.column(name), name)[0]),
                    self.numeric, self.threads)

    def adopt(self, name: str, column: NumericColumn | CategoricalColumn, kind: str) -> None:
        """Take a column observed elsewhere (validate's summary: ``monitor.summarised``) as ``name``."""
        self.columns[name], self.types[name] = column, kind

    def _start(self, table: pa.Table) -> None:
        for name in sorted(self.specs):
            arrow_type = table.column(name).type
            self.types[name] = self.specs[name].get("type") or str(arrow_type)
            if column_kind(name, self.specs[name], arrow_type) == "numeric":
                self.columns[name] = NumericColumn(self.options["quantiles"], self.options["psi_bins"])
            else:
                self.columns[name] = CategoricalColumn(self.options["max_categories"])

    def observed(self) -> dict[str, Any]:
        """After the first pass: ``{"rows", "columns": name -> state}``, a numeric column's state with its points
        placed (:meth:`NumericColumn.observed`), a categorical one's its final sketch; JSON-able, floats exact."""
        numeric = [column for column in self.columns.values() if isinstance(column, NumericColumn)]
        map_columns(NumericColumn.place_points, numeric, self.threads)  # a sort of the sample each, in parallel
        columns = {}
        for name, column in sorted(self.columns.items()):
            state = column.observed() if isinstance(column, NumericColumn) else column.sketch()
            columns[name] = {**state, "type": self.types[name]}
        return {"rows": self.rows, "columns": columns}

    @classmethod
    def from_observed(cls, observed: dict[str, Any], *, threads: int | None = None) -> ProfileSketch:
        """A sketch ready for its second pass (``count``) in another process, from :meth:`observed`'s dict."""
        sketch = cls({}, observed["rows"], threads=threads)
        for name, state in sorted(observed["columns"].items()):
            sketch.types[name] = state["type"]
            numeric = state["kind"] == "numeric"
            sketch.columns[name] = NumericColumn.from_observed(state) if numeric else CountedColumn(state)
        return sketch

    def sketches(self) -> dict[str, dict[str, Any]]:
        """name -> the column's sketch, as ``build_profile`` keeps it."""
        return {name: {**column.sketch(), "type": self.types[name]} for name, column in sorted(self.columns.items())}


def build_profile(
    table: pa.Table,
    columns: dict[str, dict[str, Any]],
    predictions: np.ndarray | None = None,
    *,
    quantiles: int = QUANTILES,
    psi_bins: int = PSI_BINS,
    max_categories: int = MAX_CATEGORIES,
    sample_rows: int = SAMPLE_ROWS,
    threads: int | None = None,
) -> dict[str, Any]:
    """The reference profile of ``columns`` (name -> column spec dict) of ``table``, and of predictions.

    Store it with the model at training time; ``drift_report`` compares live rows with it.
    Multiclass predictions ([rows, k]) are profiled as the predicted class index.

    A numeric column keeps exact moments, min and max, and a quantile sketch: ``points``, the
    distinct values among ``quantiles`` evenly spaced quantiles of a systematic sample of
    ``sample_rows`` rows (every row when there are no more: then they are the exact quantiles) plus
    the exact min and max, and for each point the exact number of reference values ``<=`` it
    (``le``) and ``<`` it (``lt``). Those give the reference ECDF exactly at the points (both
    one-sided limits), which is what the KS statistic and PSI in ``drift.py`` need; no reference
    rows are kept. ``psi_edges`` are the sample's deciles and ``psi_ref`` the exact share of values
    in each bin. A categorical column keeps category counts (the most frequent ``max_categories``,
    the rest summed in ``other``). Nulls and non-finite numbers are counted, not profiled.
    """
    missing = [name for name in sorted(columns) if name not in table.column_names]
    if missing:
        raise ProfileError(f"columns {', '.join(missing)} are not in the table; columns are: "
                           f"{', '.join(table.column_names)}")  # fmt: skip
    sketch = ProfileSketch(columns, table.num_rows, quantiles=quantiles, psi_bins=psi_bins,
                           max_categories=max_categories, sample_rows=sample_rows, threads=threads)
    sketch.observe(table)
    sketch.count(table)
    return complete_profile(sketch.sketches(), table.num_rows, predictions, quantiles=quantiles, psi_bins=psi_bins)


def complete_profile(columns: dict[str, dict[str, Any]], rows: int, predictions: np.ndarray | None = None, *,
                     quantiles: int = QUANTILES, psi_bins: int = PSI_BINS) -> dict[str, Any]:
    """The profile document from column sketches made one column at a time, and the predictions."""
    prediction = None
    if predictions is not None:
        values, kind = prediction_values(predictions)
        finite = values[np.isfinite(values)]
        prediction = {**numeric_sketch(finite, len(values) - len(finite), quantiles=quantiles, psi_bins=psi_bins),
                      "type": kind}  # fmt: skip
    return {"format": PROFILE_FORMAT, "rows": rows, "columns": dict(sorted(columns.items())),
            "predictions": prediction}
