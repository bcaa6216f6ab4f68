"""Streaming summaries of numeric columns: exact moments and extremes, and a fixed-size systematic sample.

Both are fed record batch by record batch and hold O(1) or O(sample) memory, never the column.
"""

from __future__ import annotations

import math

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

    def update(self, values: np.ndarray) -> None:
        """Add finite float64 values."""
        if not values.size:
            return
        if self.shift is None:
            self.shift = float(values.mean())
        centered = values - self.shift
        self.count += values.size
        self.sum += float(centered.sum())
        self.squares += float(np.einsum("i,i->", centered, centered))  # not BLAS: its idle threads spin
        self.low, self.high = min(self.low, float(values.min())), max(self.high, float(values.max()))

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
