"""Streaming summaries of numeric columns: exact moments and extremes, and a fixed-size systematic sample.

Both are fed record batch by record batch and hold O(1) or O(sample) memory, never the column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

SAMPLE_ROWS = 65_536  # rows a sample keeps; below this many rows it holds every row (quantiles are exact)


class Moments:
    """Count, mean, population std, min and max of the values seen, updated batch by batch.

    Sums are taken around a shift (the first batch's mean), so the variance keeps full precision for
    data far from zero; combining batches gives the whole column's statistics to about 1e-12.
    """

    def __init__(self) -> None:
        self.count, self.shift, self.sum, self.squares = 0, None, 0.0, 0.0
        self.low, self.high = math.inf, -math.inf

    def update(self, values: np.ndarray, *, owned: bool = False, bounds: tuple[float, float] | None = None) -> None:
        """Add finite float64 values. ``owned``: they are the caller's scratch copy, centered in place (no
        copy); ``bounds``: their min and max, when the caller has them already."""
        if not values.size:
            return
        low, high = bounds if bounds is not None else (float(values.min()), float(values.max()))
        if self.shift is None:
            self.shift = float(values.mean())
        centered = np.subtract(values, self.shift, out=values if owned else None)
        self.count += values.size
        self.sum += float(centered.sum())
        self.squares += float(np.einsum("i,i->", centered, centered))  # not BLAS: its idle threads spin
        self.low, self.high = min(self.low, float(low)), max(self.high, float(high))

    def to_dict(self) -> dict:
        """The fields, JSON-able (min and max None while empty); floats round-trip exactly through JSON."""
        empty = not self.count
        return {"count": self.count, "shift": self.shift, "sum": self.sum, "squares": self.squares,
                "low": None if empty else self.low, "high": None if empty else self.high}

    @classmethod
    def from_dict(cls, record: dict) -> Moments:
        """The moments :meth:`to_dict` wrote."""
        moments = cls()
        moments.count, moments.shift, moments.sum, moments.squares = (int(record["count"]), record["shift"],
                                                                      record["sum"], record["squares"])
        if moments.count:
            moments.low, moments.high = record["low"], record["high"]
        return moments

    @property
    def mean(self) -> float:
        return self.shift + self.sum / self.count

    @property
    def std(self) -> float:
        offset = self.sum / self.count
        return math.sqrt(max(self.squares / self.count - offset * offset, 0.0))


class SystematicSample:
    """Every ``stride``-th row of a stream of ``rows`` rows (stride = ceil(rows / size)): at most about
    ``size`` rows, every row when ``rows <= size``. Independent of how the stream is cut into batches."""

    def __init__(self, rows: int, size: int = SAMPLE_ROWS):
        self.stride, self.offset = max(1, -(-rows // max(size, 1))), 0

    def positions(self, batch_rows: int) -> np.ndarray:
        """Indices of the sampled rows in the next batch of ``batch_rows`` rows (the stream advances)."""
        first = -self.offset % self.stride
        self.offset += batch_rows
        return np.arange(first, batch_rows, self.stride)

    def restart(self) -> None:
        self.offset = 0


def inverted_cdf(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of sorted values that are always data values (NumPy's "inverted_cdf").

    Interpolated quantiles would invent points between the values of a discrete column.
    """
    index = np.clip(np.ceil(levels * len(ordered)).astype(np.int64) - 1, 0, len(ordered) - 1)
    return ordered[index]


class ExactRanks:
    """Exact order statistics of ``count`` finite values streamed pass after pass (the same values in the
    same order each pass), holding at most ``collect`` of them at a time.

    ``ranks`` are 0-based positions in the sorted values; ``sample`` is a sample of the values (every value
    when it has ``count`` of them: then nothing is streamed). Each pass narrows, for every pending rank, an
    open window of values it is known to lie in: it counts the values below and at sample values (edges) in
    the window and collects the values of a bracket around the rank's place in the sample. A collected
    bracket that holds the rank gives it exactly; otherwise (the bracket missed or overflowed ``collect``)
    the counts name the tie or the gap between edges that holds it, the next window. A window too large to
    collect is sampled again in the next pass (``sample_size`` values). Windows shrink every two passes at
    the latest (an edge is a value of the window that the next window leaves out), so this terminates."""

    def __init__(self, ranks: Iterable[int], count: int, sample: np.ndarray, collect: int,
                 sample_size: int = SAMPLE_ROWS):
        self.collect, self.sample_size, self.found = max(int(collect), 1), max(int(sample_size), 1), {}
        self.held = self.peak = self.passes = 0
        ordered, ranks = np.sort(sample), sorted(set(ranks))
        if len(ordered) == count:
            self.found, self.windows = {r: float(ordered[r]) for r in ranks}, []
        else:
            self.windows = [_Window(-math.inf, math.inf, 0, count, ordered, ranks, self)]

    @property
    def pending(self) -> bool:
        return bool(self.windows)

    def update(self, values: np.ndarray) -> None:
        """Feed the next batch's finite values."""
        for window in self.windows:
            whole = window.low == -math.inf and window.high == math.inf
            window.update(values if whole else values[(values > window.low) & (values < window.high)], self)

    def end_pass(self) -> None:
        narrowed: dict[tuple[float, float], list] = {}
        for window in self.windows:
            for rank, (low, high, below, size, sample) in window.settle(self.found).items():
                entry = narrowed.setdefault((low, high), [below, size, sample, []])
                entry[3].append(rank)
        self.held, self.passes = 0, self.passes + 1
        self.windows = [_Window(low, high, below, size, sample, ranks, self)
                        for (low, high), (below, size, sample, ranks) in narrowed.items()]

    def hold(self, values: int) -> bool:
        """Reserve room for ``values`` more collected values; False (nothing reserved) past the cap."""
        if self.held + values > self.collect:
            return False
        self.held += values
        self.peak = max(self.peak, self.held)
        return True


class _Window:
    """One pass over the values in the open interval (low, high), above ``below`` smaller values, which
    holds ``size`` values and the pending ``ranks``."""

    def __init__(self, low: float, high: float, below: int, size: int, sample: np.ndarray, ranks: list[int],
                 owner: ExactRanks):
        self.low, self.high, self.below, self.size, self.ranks = low, high, below, size, ranks
        self.edges = np.unique(sample)
        self.left = np.zeros(len(self.edges) + 1, np.int64)  # values by count of edges < value
        self.right = np.zeros(len(self.edges) + 1, np.int64)  # values by count of edges <= value
        self.seen, self.picked = 0, []
        if size <= owner.collect:
            self.spans = {r: None for r in ranks}  # collect the whole window
        elif len(sample):
            margin = int(3 * math.sqrt(len(sample))) + 2  # six standard deviations of a sample rank
            places = [int((r - below) * len(sample) / size) for r in ranks]
            self.spans = {r: (float(sample[max(p - margin, 0)]), float(sample[min(p + margin, len(sample) - 1)]))
                          for r, p in zip(ranks, places)}
        else:
            self.spans = {}  # sample the window this pass, collect in the next
        self.stride = 0 if self.spans else -(-size // owner.sample_size)
        self.parts: dict = {span: [] for span in self.spans.values()}

    def update(self, inside: np.ndarray, owner: ExactRanks) -> None:
        if len(self.edges):
            self.left += np.bincount(np.searchsorted(self.edges, inside, "left"), minlength=len(self.left))
            self.right += np.bincount(np.searchsorted(self.edges, inside, "right"), minlength=len(self.right))
        if self.stride:
            self.picked.append(inside[-self.seen % self.stride::self.stride])
        self.seen += len(inside)
        for span, parts in self.parts.items():
            if parts is None:
                continue
            part = inside if span is None else inside[(inside >= span[0]) & (inside <= span[1])]
            if owner.hold(len(part)):
                parts.append(part)
            else:
                owner.held -= sum(len(p) for p in parts)
                self.parts[span] = None  # overflowed: the counts narrow the window instead

    def settle(self, found: dict[int, float]) -> dict[int, tuple]:
        """Record the ranks this pass pinned down; the next window (low, high, below, size, sample) of the others."""
        below_edge = np.cumsum(self.right)[:-1]  # values < edges[i]
        upto_edge = np.cumsum(self.left)[:-1]  # values <= edges[i]
        picked = np.sort(np.concatenate(self.picked)) if self.picked else np.zeros(0)
        following = {}
        for rank in self.ranks:
            value = self._collected(rank, below_edge)
            if value is not None:
                found[rank] = value
                continue
            if not len(self.edges):
                following[rank] = (self.low, self.high, self.below, self.size, picked)
                continue
            within = rank - self.below
            i = int(np.searchsorted(upto_edge, within, "right"))  # the first edge with more values <= it
            if i < len(self.edges) and below_edge[i] <= within:
                found[rank] = float(self.edges[i])  # a tie at an edge
                continue
            before = int(upto_edge[i - 1]) if i else 0
            after = int(below_edge[i]) if i < len(self.edges) else self.seen
            low = float(self.edges[i - 1]) if i else self.low
            high = float(self.edges[i]) if i < len(self.edges) else self.high
            following[rank] = (low, high, self.below + before, after - before, np.zeros(0))
        return following

    def _collected(self, rank: int, below_edge: np.ndarray) -> float | None:
        span = self.spans.get(rank, False)
        parts = self.parts.get(span) if span is not False else None
        if parts is None:
            return None
        skipped = 0 if span is None else int(below_edge[np.searchsorted(self.edges, span[0])])
        index = rank - self.below - skipped
        count = sum(len(p) for p in parts)
        if not 0 <= index < count:
            return None
        return float(np.partition(np.concatenate(parts), index)[index])
