"""Score rows with an exported loopc model bundle, using JAX and NumPy only (pyarrow for Parquet, optional).

This file is copied into every bundle as ``score.py``; it must never import loopc. Usage::

    import score                                   # the bundle's own copy
    model = score.load("path/to/bundle")
    out = model.predict({"age": [31, 54], "plan": ["basic", "pro"]})   # dict of columns
    out = model.predict_parquet("new_rows.parquet")                      # needs pyarrow
    out["score"], out["label"], out.get("probabilities")

Both cast every input column to the type the dataset declared (``input_schema.json``) with
``input_cast.py`` (beside this file) exactly as loopc's validate step did before training.

Feature transforms replay ``transform.json`` (fitted by loopc) in NumPy; the network is the
``jax.export`` artifact ``predict.jax`` called with ``params.npz``. docs/bundle-format.md
describes every file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

BUNDLE_FORMAT = 2
READS = (1, 2)  # format 1: the same files; its score.py did not cast the input
OTHER = "<other>"
CHUNK = 65536
_MASK = (1 << 64) - 1
_FNV_PRIME = 0x100000001B3


class BundleError(Exception):
    """The bundle or the rows given to it cannot be used (missing file, column, wrong format)."""


# --------------------------------------------------------------------------- raw values


def _as_float(values) -> np.ndarray:
    """A column as float64 with NaN for missing values (None, NaN)."""
    array = np.asarray(values)
    if array.dtype.kind in "fiub":
        return array.astype(np.float64)
    return np.array([np.nan if v is None else float(v) for v in array], np.float64)


def _number_text(value: float) -> str | None:
    if not math.isfinite(value):
        return None
    if value == round(value) and abs(value) < 2**62:
        return str(int(value))
    return repr(float(value))


def _as_text(values) -> list:
    """Category text per row: numbers without a trailing '.0', missing values as None."""
    array = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if array.dtype.kind in "fiub":
        return [_number_text(float(v)) for v in array]
    out = []
    for v in array:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            out.append(None)
        elif isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out.append(_number_text(float(v)))
        else:
            out.append(str(v))
    return out


def _fnv1a(data: bytes, state: int) -> int:
    for byte in data:
        state = ((state ^ byte) * _FNV_PRIME) & _MASK
    return state


def _splitmix64(value: int) -> int:
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def stable_hash64(text: str | None, key: bytes) -> int:
    """loopc's stable row hash: FNV-1a over key, a zero byte and the UTF-8 text, then splitmix64."""
    state = _fnv1a(key + b"\0", 0xCBF29CE484222325)
    return _splitmix64(_fnv1a((text or "").encode("utf-8"), state))


# --------------------------------------------------------------------------- transforms


def _one_hot(index: np.ndarray, width: int) -> np.ndarray:
    out = np.zeros((len(index), width), np.float32)
    rows = np.flatnonzero(index >= 0)
    out[rows, index[rows]] = 1.0
    return out


def _onehot(state: dict, values) -> np.ndarray:
    vocabulary = {v: i for i, v in enumerate(state["vocabulary"])}
    other = len(vocabulary)
    index = np.array([vocabulary.get(v, other) if v is not None else other for v in _as_text(values)], np.int64)
    return _one_hot(index, other + 1)


def _hash(state: dict, values) -> np.ndarray:
    buckets = state["buckets"]
    index = np.array([stable_hash64(v, b"loopc-feature") % buckets for v in _as_text(values)], np.int64)
    return _one_hot(index, buckets)


def _bucketize(state: dict, values: np.ndarray) -> np.ndarray:
    index = np.searchsorted(np.asarray(state["edges"]), values, side="right")
    return _one_hot(np.where(np.isnan(values), -1, index), len(state["edges"]) + 1)


def _clip(state: dict, values: np.ndarray) -> np.ndarray:
    low = -np.inf if state["min"] is None else state["min"]
    high = np.inf if state["max"] is None else state["max"]
    return np.clip(values, low, high)


APPLY = {
    "identity": lambda s, v: v,
    "standardize": lambda s, v: (v - s["mean"]) / s["std"],
    "minmax": lambda s, v: (v - s["min"]) / s["span"],
    "log": lambda s, v: np.log(np.maximum(v + s["offset"], s["floor"])),
    "clip": _clip,
    "impute": lambda s, v: np.where(np.isnan(v), s["value"], v),
    "bucketize": _bucketize,
    "onehot": _onehot,
    "hash": _hash,
}


def _expression_columns(columns: dict, names) -> dict:
    """Columns for the expression language: numbers as float64 (NaN nulls), text as objects."""
    out = {}
    for name in names:
        array = np.asarray(columns[name]) if not isinstance(columns[name], list) else None
        if array is not None and array.dtype.kind in "fiub":
            out[name] = array.astype(np.float64)
            continue
        values = list(columns[name])
        try:
            out[name] = _as_float(values)
        except (TypeError, ValueError):
            out[name] = np.asarray(values, dtype=object)
    return out


def _raw_values(feature: dict, columns: dict, expressions, rows: int):
    """The values a feature reads: its column, or its expression evaluated on the columns it names."""
    if feature["column"] is not None:
        return columns[feature["column"]]
    expr = feature["expr"]
    result = expressions.evaluate(expr, _expression_columns(columns, expressions.columns_in(expr)), rows=rows)
    return list(result) if result.dtype == object else result.astype(np.float64)


def apply_feature(feature: dict, values) -> np.ndarray:
    """One feature's output columns, float32 [n, width], exactly as loopc's features step makes them."""
    values = values if feature["text"] else _as_float(values)
    missing = None if feature["text"] else np.isnan(values)
    with np.errstate(all="ignore"):
        for state in feature["steps"]:
            values = APPLY[state["kind"]](state, values)
    if values.ndim == 2:
        return values.astype(np.float32)
    huge = values[np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max)]
    if len(huge):  # float32 would make them inf: the features step refuses them too
        source = f"column '{feature['column']}'" if feature["column"] is not None else f"expr '{feature['expr']}'"
        raise BundleError(f"feature '{feature.get('name')}' ({source}): {len(huge)} value(s) beyond the float32 range of "
                          f"the model's inputs (such as {huge[0]:.6g}) after its transforms; standardize, log or clip it")
    out = np.where(np.isfinite(values), values, 0.0)[:, None]
    if feature["missing_indicator"]:
        out = np.hstack([out, missing[:, None].astype(np.float64)])
    return out.astype(np.float32)


# --------------------------------------------------------------------------- the bundle


def _read_json(path: Path):
    if not path.is_file():
        raise BundleError(f"bundle file {path} is missing; export the model again")
    return json.loads(path.read_text(encoding="utf-8"))


def _load_params(path: Path) -> dict:
    """params.npz ('layer_0/w' keys) as the nested dict the exported function takes."""
    params: dict = {}
    with np.load(path, allow_pickle=False) as archive:
        for name in archive.files:
            node = params
            *parents, leaf = name.split("/")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = np.asarray(archive[name])
    return params


class Model:
    """A loaded bundle: ``predict(columns)`` gives score, label and (multiclass) probabilities per row."""

    def __init__(self, directory: str | Path):
        import jax

        self.directory = Path(directory)
        self.manifest = _read_json(self.directory / "bundle.json")
        if self.manifest.get("format") not in READS:
            raise BundleError(f"bundle format {self.manifest.get('format')}; this score.py reads "
                              f"{', '.join(map(str, READS))}")
        self.transform = _read_json(self.directory / "transform.json")
        self.schema = _read_json(self.directory / "input_schema.json")
        self.task = self.manifest["task"]
        self.classes = self.manifest.get("classes")
        self.params = _load_params(self.directory / "params.npz")
        self.expressions = _load_module(self.directory / "expressions.py", "loopc_bundle_expressions")
        self.exported = jax.export.deserialize(bytearray((self.directory / "predict.jax").read_bytes()))
        self._call = jax.jit(self.exported.call)
        self._cast = _load_module(Path(__file__).with_name("input_cast.py"), "loopc_bundle_input_cast")

    @property
    def input_columns(self) -> list[str]:
        return [c["name"] for c in self.schema["columns"]]

    @property
    def feature_names(self) -> list[str]:
        return list(self.transform["names"])

    def _require(self, names) -> None:
        missing = [c for c in self.input_columns if c not in names]
        if missing:
            raise BundleError(f"rows lack column(s) {', '.join(missing)}; the model reads {', '.join(self.input_columns)}")

    def cast(self, columns: dict) -> dict:
        """The input columns cast to their declared types (``input_schema.json``), as :meth:`features` reads
        them; BundleError names a missing column or a column with a value that cannot be read as its type."""
        self._require(columns)
        return self._cast_with(lambda name: self._cast.classify(name, columns[name]), lambda: columns)

    def _cast_with(self, classify, columns) -> dict:
        """Each typed column cast (``classify(name)`` gives its kind, values and nulls), the rest as given."""
        out = {}
        for entry in self.schema["columns"]:
            name, ctype = entry["name"], entry.get("type")
            try:
                out[name] = self._cast.cast_values(name, *classify(name), ctype) if ctype else columns()[name]
            except self._cast.CastError as exc:
                raise BundleError(str(exc)) from None
        return out

    def features(self, columns: dict) -> np.ndarray:
        """float32 [rows, dim], columns in the order of ``feature_names`` (the spec's model.features order),
        from columns already of their declared types (:meth:`cast`)."""
        self._require(columns)
        rows = len(columns[self.input_columns[0]]) if self.input_columns else 0
        blocks = [apply_feature(f, _raw_values(f, columns, self.expressions, rows)) for f in self.transform["features"]]
        return np.hstack(blocks) if blocks else np.zeros((rows, 0), np.float32)

    def raw_predictions(self, x: np.ndarray) -> np.ndarray:
        """The network's predictions for a feature matrix, in fixed chunks (one compilation)."""
        x = np.asarray(x, np.float32)
        chunk = min(CHUNK, max(len(x), 1))
        pieces = []
        for start in range(0, len(x), chunk):
            block = x[start:start + chunk]
            padded = np.concatenate([block, np.zeros((chunk - len(block), x.shape[1]), np.float32)])
            pieces.append(np.asarray(self._call(self.params, padded))[: len(block)])
        if not pieces:
            width = len(self.classes) if self.task == "multiclass_classification" else None
            return np.zeros((0, width) if width else (0,), np.float32)
        return np.concatenate(pieces).astype(np.float32)

    def predict(self, columns: dict) -> dict:
        """{"score", "label"[, "probabilities"]} for a dict of equally long columns (cast first: :meth:`cast`)."""
        return self._predict_cast(self.cast(columns))

    def _predict_cast(self, columns: dict) -> dict:
        return outputs(self.task, self.classes, self.raw_predictions(self.features(columns)))

    def predict_parquet(self, path: str | Path) -> dict:
        """:meth:`predict` for every row of a Parquet file or folder (hive partitions too; needs pyarrow),
        each record batch cast to the declared types; BundleError names the file and column of a problem."""
        import pyarrow.dataset as ds

        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        self._require(dataset.schema.names)
        pieces = []
        for tagged in dataset.scanner(columns=self.input_columns).scan_batches():
            batch = tagged.record_batch
            try:
                pieces.append(self._cast_with(lambda name, b=batch: self._cast.arrow_classify(b.column(name)),
                                              lambda b=batch: table_columns(b, self.schema)))
            except BundleError as exc:
                raise BundleError(f"'{tagged.fragment.path}': {exc}") from None
        return self._predict_cast({c: _joined([p[c] for p in pieces]) for c in self.input_columns})


def _joined(pieces: list):
    """One column from its per-batch pieces (arrays or lists)."""
    if not pieces:
        return np.zeros(0, np.float64)
    if isinstance(pieces[0], np.ndarray):
        return np.concatenate(pieces)
    return [v for piece in pieces for v in piece]


def table_columns(table, schema: dict) -> dict:
    """A pyarrow table's columns as :meth:`Model.features` reads them: numbers, booleans and times
    as float64 with NaN nulls (times in seconds), text as a list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = {}
    for name in (c["name"] for c in schema["columns"]):
        values = table.column(name)
        if pa.types.is_dictionary(values.type):
            values = values.cast(values.type.value_type)
        if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
            micros = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
            values = pc.divide(pc.cast(micros, pa.float64(), safe=False), 1e6)  # beyond 2**53 us: rounded
        if pa.types.is_integer(values.type) or pa.types.is_floating(values.type) or pa.types.is_boolean(values.type):
            columns[name] = pc.cast(values, pa.float64(), safe=False).to_numpy(zero_copy_only=False).astype(np.float64)
        else:
            columns[name] = values.to_pylist()
    return columns


def _load_module(path: Path, name: str):
    """A module from a file of the bundle (the expression language loopc fitted ``expr`` features with)."""
    import importlib.util

    if not path.is_file():
        raise BundleError(f"bundle file {path} is missing; export the model again")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs(task: str, classes: list | None, pred: np.ndarray) -> dict:
    """score (P(y=1), the top class's probability, or the value), label, and probabilities for multiclass."""
    if task == "binary_classification":
        return {"score": pred, "label": (pred >= 0.5).astype(np.int64)}
    if task == "multiclass_classification":
        top = np.argmax(pred, axis=1) if len(pred) else np.zeros(0, np.int64)
        return {"score": pred[np.arange(len(pred)), top], "label": [classes[i] for i in top], "probabilities": pred}
    return {"score": pred, "label": pred}


def load(directory: str | Path) -> Model:
    """The bundle in ``directory``."""
    return Model(directory)
