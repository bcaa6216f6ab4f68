"""Reference profiles: a compact, JSON-able summary of training data that drift is measured against."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PROFILE_FORMAT = 1
QUANTILES = 1001  # sketch resolution: the KS statistic is exact to within ~1/(QUANTILES-1)
PSI_BINS = 10
MAX_CATEGORIES = 1000
NUMERIC_TYPES = ("int", "float", "timestamp", "date")
CATEGORICAL_TYPES = ("bool", "string", "category")


def map_columns(fn: Callable[[Any], Any], items: Sequence[Any], threads: int | None = None) -> list[Any]:
    """``[fn(item) for item in items]`` on a small thread pool (NumPy sorts release the GIL).

    Kept here rather than imported from ``drift`` so profiling does not import SciPy (seconds of CPU).
    """
    workers = min(len(items), threads if threads is not None else min(4, os.cpu_count() or 1))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


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


def numeric_sketch(values: np.ndarray, nulls: int, *, quantiles: int = QUANTILES, psi_bins: int = PSI_BINS) -> dict:
    """The quantile sketch of one numeric column (see the module docstring)."""
    n = len(values)
    base = {"kind": "numeric", "count": n, "nulls": int(nulls), "null_rate": _rate(nulls, n + nulls)}
    if n == 0:
        return {**base, "mean": None, "std": None, "min": None, "max": None, "points": [], "le": [], "lt": [],
                "psi_edges": [], "psi_ref": []}  # fmt: skip
    ordered = np.sort(values)
    points = np.unique(_quantiles(ordered, np.linspace(0.0, 1.0, quantiles)))
    edges = np.unique(_quantiles(ordered, np.linspace(0.0, 1.0, psi_bins + 1)[1:-1]))
    le_edges = np.searchsorted(ordered, edges, side="right")
    psi_ref = np.diff(np.concatenate([[0], le_edges, [n]])) / n
    return {
        **base,
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(ordered[0]),
        "max": float(ordered[-1]),
        "points": points.tolist(),
        "le": np.searchsorted(ordered, points, side="right").tolist(),
        "lt": np.searchsorted(ordered, points, side="left").tolist(),
        "psi_edges": edges.tolist(),
        "psi_ref": psi_ref.tolist(),
    }


def _quantiles(ordered: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of already sorted values that are always data values (NumPy's "inverted_cdf").

    Interpolated quantiles would invent points between the values of a discrete column.
    """
    index = np.clip(np.ceil(levels * len(ordered)).astype(np.int64) - 1, 0, len(ordered) - 1)
    return ordered[index]


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


def build_profile(
    table: pa.Table,
    columns: dict[str, dict[str, Any]],
    predictions: np.ndarray | None = None,
    *,
    quantiles: int = QUANTILES,
    psi_bins: int = PSI_BINS,
    max_categories: int = MAX_CATEGORIES,
    threads: int | None = None,
) -> dict[str, Any]:
    """The reference profile of ``columns`` (name -> column spec dict) of ``table``, and of predictions.

    Store it with the model at training time; ``drift_report`` compares live rows with it.
    Multiclass predictions ([rows, k]) are profiled as the predicted class index.

    A numeric column keeps a quantile sketch: the distinct values among ``quantiles`` evenly
    spaced quantiles (``points``) and, for each point, the exact number of reference values
    ``<=`` it (``le``) and ``<`` it (``lt``). Those give the reference ECDF exactly at the points
    (both one-sided limits), which is what the KS statistic and PSI in ``drift.py`` need; no
    reference rows are kept. A categorical column keeps category counts (the most frequent
    ``max_categories``, the rest summed in ``other``). Nulls and non-finite numbers are counted,
    not profiled.
    """
    missing = [name for name in sorted(columns) if name not in table.column_names]
    if missing:
        raise ProfileError(f"columns {', '.join(missing)} are not in the table; columns are: "
                           f"{', '.join(table.column_names)}")  # fmt: skip

    def sketch(name: str) -> dict[str, Any]:
        return column_sketch(table.column(name), name, columns[name], quantiles=quantiles, psi_bins=psi_bins,
                             max_categories=max_categories)

    names = sorted(columns)
    profiled = dict(zip(names, map_columns(sketch, names, threads)))
    return complete_profile(profiled, table.num_rows, predictions, quantiles=quantiles, psi_bins=psi_bins)


def column_sketch(column: pa.ChunkedArray | pa.Array, name: str, spec: dict[str, Any], *,
                  quantiles: int = QUANTILES, psi_bins: int = PSI_BINS,
                  max_categories: int = MAX_CATEGORIES) -> dict[str, Any]:
    """The sketch of one column (numeric quantiles or category counts), as ``build_profile`` keeps it."""
    if column_kind(name, spec, column.type) == "numeric":
        result = numeric_sketch(*numeric_values(column, name), quantiles=quantiles, psi_bins=psi_bins)
    else:
        result = categorical_sketch(*category_counts(column), max_categories=max_categories)
    return {**result, "type": spec.get("type") or str(column.type)}


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
