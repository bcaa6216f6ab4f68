"""Feature transforms: fitted on the train split only, saved as JSON, applied the same way at serving.

Each feature reads one column or an expression and runs its transforms in order.
Numeric transforms (identity, standardize, minmax, log, clip, impute) map a float
vector to a float vector; bucketize, onehot and hash end the chain with one-hot
columns. A text column without onehot/hash gets an implicit onehot.

Nulls: numeric nulls are NaN. A numeric feature whose training values held nulls and
that has no ``impute`` step gets an extra 0/1 column ``<name>:missing``; every value
still NaN or infinite after the transforms becomes 0.0 (the mean, after standardize).
Text nulls and categories unseen at fit time go to the ``<name>=<other>`` slot; a null
number falls in no bucket (all bucket columns 0). ``log`` needs ``x + offset > 0`` on
the training rows (else FeatureError); at serving, smaller values are clamped to the
smallest ``x + offset`` seen in training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data import expressions
from loopc.runtime.data.checks import table_columns
from loopc.runtime.data.parallel import map_columns
from loopc.runtime.data.split import stable_hash64

FORMAT = 1
OTHER = "<other>"
TERMINAL = ("bucketize", "onehot", "hash")
TEXT_TYPES = ("string", "category")


class FeatureError(Exception):
    """A feature cannot be fitted or applied (missing column, wrong type, invalid values)."""


# --------------------------------------------------------------------------- raw values


def _raw_values(table: pa.Table, column: str | None, expr: str | None, where: str):
    """Numeric float64 (NaN nulls) or a pyarrow string array, for a column or an expression."""
    if column is not None:
        if table.schema.get_field_index(column) < 0:  # not `in column_names`: a list of every name, feature by feature
            raise FeatureError(f"{where}: column '{column}' is missing (present: {', '.join(table.column_names)})")
        values = table.column(column)
        value_type = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        if pa.types.is_string(value_type) or pa.types.is_large_string(value_type):
            return pc.cast(values, pa.string()).combine_chunks()
        if pa.types.is_floating(value_type) or pa.types.is_integer(value_type) or pa.types.is_boolean(value_type):
            numbers = values if values.type == pa.float64() else pc.cast(values, pa.float64())
            return np.asarray(numbers.to_numpy(), np.float64)  # no copy of a float64 chunk
        return table_columns(table, [column])[column]
    try:
        used = expressions.columns_in(expr)
        result = expressions.evaluate(expr, table_columns(table, used), rows=table.num_rows)
    except expressions.ExpressionError as error:
        raise FeatureError(f"{where}: {error}") from None
    if result.dtype == object:
        return pa.array(result, pa.string())
    return result.astype(np.float64)


def _as_text(values) -> pa.Array:
    """Numbers as category text: whole numbers without a decimal point, NaN as null."""
    if not isinstance(values, np.ndarray):
        return values
    whole = np.isfinite(values) & (values == np.round(values)) & (np.abs(values) < 2**62)
    as_int = pc.cast(pa.array(np.where(whole, values, 0).astype(np.int64)), pa.string())
    as_float = pc.cast(pa.array(values, from_pandas=True), pa.string())
    return pc.if_else(pa.array(whole), as_int, as_float)


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    """Rows with a 1 at ``index`` (an index of -1 gives an all-zero row)."""
    out = np.zeros((len(index), width), np.float32)
    rows = np.flatnonzero(index >= 0)
    out[rows, index[rows]] = 1.0
    return out


def _bound(value: float | None, default: float) -> float:
    return default if value is None else value


def _fmt(value: float) -> str:
    return format(value, ".6g")


# --------------------------------------------------------------------------- transforms


def _apply_onehot(state, values):
    vocabulary = pa.array(state["vocabulary"], pa.string())
    index = pc.fill_null(pc.index_in(_as_text(values), value_set=vocabulary), len(vocabulary))
    return _one_hot(index.to_numpy(zero_copy_only=False).astype(np.int64), len(vocabulary) + 1)


def _apply_hash(state, values):
    buckets = state["buckets"]
    hashed = stable_hash64(_as_text(values), b"loopc-feature") % np.uint64(buckets)
    return _one_hot(hashed.astype(np.int64), buckets)


def _apply_bucketize(state, values):
    index = np.searchsorted(np.asarray(state["edges"]), values, side="right")
    return _one_hot(np.where(np.isnan(values), -1, index), len(state["edges"]) + 1)


KINDS = ("identity", "standardize", "minmax", "log", "clip", "impute", "bucketize", "onehot", "hash")
_APPLY = {
    "identity": lambda s, v: v,
    "standardize": lambda s, v: (v - s["mean"]) / s["std"],
    "minmax": lambda s, v: (v - s["min"]) / s["span"],
    "log": lambda s, v: np.log(np.maximum(v + s["offset"], s["floor"])),
    "clip": lambda s, v: np.clip(v, _bound(s["min"], -np.inf), _bound(s["max"], np.inf)),
    "impute": lambda s, v: np.where(np.isnan(v), s["value"], v),
    "bucketize": _apply_bucketize,
    "onehot": _apply_onehot,
    "hash": _apply_hash,
}


def _output_names(name: str, last: dict | None, missing_indicator: bool) -> list[str]:
    kind = last["kind"] if last else "identity"
    if kind == "onehot":
        return [f"{name}={v}" for v in last["vocabulary"]] + [f"{name}={OTHER}"]
    if kind == "hash":
        return [f"{name}#{i}" for i in range(last["buckets"])]
    if kind == "bucketize":
        edges = [_fmt(e) for e in last["edges"]]
        inner = [f"{name}[{a},{b})" for a, b in zip(edges, edges[1:])]
        return [f"{name}<{edges[0]}", *inner, f"{name}>={edges[-1]}"] if edges else [f"{name}[all]"]
    return [name, f"{name}:missing"] if missing_indicator else [name]


# --------------------------------------------------------------------------- fitted features


@dataclass(frozen=True)
class FittedFeature:
    """One feature's source, fitted transform states and output column names."""

    name: str
    column: str | None
    expr: str | None
    text: bool
    steps: tuple[dict, ...]
    missing_indicator: bool

    @property
    def names(self) -> list[str]:
        return _output_names(self.name, self.steps[-1] if self.steps else None, self.missing_indicator)

    def where(self) -> str:
        source = f"column '{self.column}'" if self.column is not None else f"expr '{self.expr}'"
        return f"feature '{self.name}' ({source})"

    def apply(self, table: pa.Table) -> np.ndarray:
        """The feature's output columns for every row of ``table``: float32 [n, len(names)]."""
        out = np.empty((len(self.names), table.num_rows), np.float32)
        self.apply_into(table, out)
        return out.T.copy()

    def apply_into(self, table: pa.Table, out: np.ndarray) -> None:
        """Write the feature's output columns into ``out``, float32 [len(names), n] (one row per column)."""
        values = _raw_values(table, self.column, self.expr, self.where())
        if isinstance(values, pa.Array) and not self.text:
            raise FeatureError(f"{self.where()}: was numeric in training but is text now")
        missing = np.isnan(values) if isinstance(values, np.ndarray) else None
        with np.errstate(all="ignore"):
            for state in self.steps:
                values = _APPLY[state["kind"]](state, values)
            if values.ndim == 2:
                out[:] = values.T
                return
            out[0] = values  # a value beyond float32's range becomes inf here
        finite = np.isfinite(out[0])
        if not finite.all():
            huge = values[~finite & np.isfinite(values)]
            if len(huge):
                raise FeatureError(f"{self.where()}: {len(huge)} value(s) beyond the float32 range of the model's "
                                   f"inputs (such as {huge[0]:.6g}) after its transforms; standardize, log or clip it")
            out[0, ~finite] = 0.0
        if self.missing_indicator:
            out[1] = missing


def _transform_specs(feature: dict, text: bool, where: str) -> list[dict]:
    specs = [{"kind": t} if isinstance(t, str) else dict(t) for t in feature.get("transforms") or []]
    for index, spec in enumerate(specs):
        if spec.get("kind") not in KINDS:
            raise FeatureError(f"{where}: unknown transform '{spec.get('kind')}'; known: {', '.join(KINDS)}")
        if spec["kind"] in TERMINAL and index != len(specs) - 1:
            raise FeatureError(f"{where}: '{spec['kind']}' must be the last transform (it makes one-hot columns)")
        if text and spec["kind"] not in ("onehot", "hash"):
            raise FeatureError(f"{where}: is text; '{spec['kind']}' needs numbers (use onehot or hash)")
    if text and not specs:
        specs = [{"kind": "onehot"}]
    return specs


def fit_feature(train: pa.Table, name: str, feature: dict) -> FittedFeature:
    """Fit one feature's transforms, in order, on the training rows."""
    from loopc.runtime.features.fitting import fit_stream

    return fit_stream(lambda: [train], {name: feature}, None, train.num_rows).features[0]


class FittedFeatures:
    """Every feature of a model, fitted; ``apply`` gives the model's float32 input matrix."""

    def __init__(self, features: list[FittedFeature]):
        self.features = list(features)

    @property
    def names(self) -> list[str]:
        return [n for feature in self.features for n in feature.names]

    @property
    def dim(self) -> int:
        return len(self.names)

    @property
    def input_columns(self) -> list[str]:
        """The raw columns the features read (serving needs exactly these)."""
        used = set()
        for f in self.features:
            used |= {f.column} if f.column is not None else expressions.columns_in(f.expr)
        return sorted(used)

    def apply(self, table: pa.Table) -> np.ndarray:
        """float32 [rows, dim], never NaN, columns in the order of ``names``."""
        return np.ascontiguousarray(self.apply_columns(table).T)

    def apply_columns(self, table: pa.Table, threads: int | None = 1) -> np.ndarray:
        """float32 [dim, rows]: :meth:`apply` transposed (each output column contiguous), the features
        computed on ``threads`` threads."""
        out = np.empty((self.dim, table.num_rows), np.float32)
        bounds = np.cumsum([0] + [len(f.names) for f in self.features])
        parts = [(f, out[a:b]) for f, a, b in zip(self.features, bounds, bounds[1:])]
        map_columns(lambda part: part[0].apply_into(table, part[1]), parts, threads)
        return out

    def to_dict(self) -> dict:
        features = [
            {"name": f.name, "column": f.column, "expr": f.expr, "text": f.text,
             "missing_indicator": f.missing_indicator, "steps": list(f.steps)}
            for f in self.features
        ]
        return {"format": FORMAT, "features": features, "names": self.names}

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys): the same fit gives the same bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, indent=1, allow_nan=False) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FittedFeatures:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise FeatureError(f"fitted features are not valid JSON: {error}") from None
        if data.get("format") != FORMAT:
            raise FeatureError(f"fitted features have format {data.get('format')}, this loopc reads {FORMAT}")
        return cls([
            FittedFeature(f["name"], f["column"], f["expr"], f["text"], tuple(f["steps"]), f["missing_indicator"])
            for f in data["features"]
        ])


def fit_features(train: pa.Table, features: dict[str, dict], columns: dict[str, dict] | None = None) -> FittedFeatures:
    """Fit every feature (``Feature`` dicts, in model order) on ``train`` only.

    ``columns`` (the dataset's ``Column`` dicts) lets a declared category column that
    arrives as numbers still be treated as text. One batch of the streaming fit
    (:mod:`loopc.runtime.features.fitting`).
    """
    from loopc.runtime.features.fitting import fit_stream

    if train.num_rows == 0:
        raise FeatureError("cannot fit features: the train split has no rows")
    return fit_stream(lambda: [train], features, columns, train.num_rows)


def feature_columns(feature: dict) -> list[str]:
    """The raw columns one ``Feature`` dict reads (its column, or the columns of its expression)."""
    if feature.get("column") is not None:
        return [feature["column"]]
    try:
        return sorted(expressions.columns_in(feature.get("expr") or ""))
    except expressions.ExpressionError:
        return []  # fit_feature reports the bad expression with the feature's name


def _declared_text(table: pa.Table, features: dict, columns: dict) -> pa.Table:
    """Cast columns declared string/category to text, so their type follows the spec, not the file."""
    for feature in features.values():
        column = feature.get("column")
        declared = columns.get(column, {}).get("type")
        index = table.schema.get_field_index(column) if column is not None else -1
        if index >= 0 and declared in TEXT_TYPES:
            table = table.set_column(index, column, pc.cast(table.column(column), pa.string()))
    return table
