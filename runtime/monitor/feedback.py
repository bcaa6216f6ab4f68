"""Labels back in: stored predictions joined with labels that arrived later, realized metrics per version.

Predictions are the scoring plan's output (``OUTPUT/version=N/batch=B/*.parquet``, columns: the keys,
``score``, ``model_version``, ``scored_at`` and, for multiclass, ``probabilities``). A key has one label:
label rows repeated with the same label count once, and label rows that disagree on a key are an error.
Every prediction whose keys have a label counts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from loopc.runtime.data.predictions import WRITE_COLUMNS, joined_outputs
from loopc.runtime.evaluate.metrics import METRIC_DIRECTIONS, MULTICLASS


class FeedbackError(Exception):
    """Predictions or labels cannot be read or joined (missing folder, key or column)."""


def read_predictions(folder: Path, keys: list[str], task: str, since: dt.datetime | None) -> pa.Table:
    """The stored predictions (keys, model_version, score or probabilities), scored at or after ``since``."""
    if not folder.is_dir():
        return pa.table({})
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    outputs = joined_outputs(task == MULTICLASS, since is not None)
    lacking = [c for c in keys if c not in dataset.schema.names]
    lacking += [w for w in outputs if WRITE_COLUMNS[w] not in dataset.schema.names]
    if lacking:
        raise FeedbackError(f"predictions in '{folder}' lack {', '.join(lacking)}; add them to scoring.keys / "
                            "scoring.write")
    where = None if since is None else ds.field(WRITE_COLUMNS["timestamp"]) >= pa.scalar(since, pa.timestamp("us", tz="UTC"))
    return dataset.to_table(columns=[*keys, *(WRITE_COLUMNS[w] for w in outputs)], filter=where)


def labelled_rows(labels: pa.Table, keys: list[str], label: str) -> pa.Table:
    """The label rows' keys and label, where none of them is null (such a row labels no prediction)."""
    labels = labels.select([*keys, label])
    return labels.filter(functools.reduce(pc.and_, [pc.is_valid(labels.column(c)) for c in [*keys, label]]))


def join_labels(predictions: pa.Table, labels: pa.Table, keys: list[str], label: str) -> pa.Table:
    """Inner join on ``keys``: every stored prediction whose keys have a label row (rows with a null key or
    label dropped)."""
    if predictions.num_rows == 0:
        return predictions
    missing = [c for c in [*keys, label] if c not in labels.column_names]
    if missing:
        raise FeedbackError(f"the label rows lack column(s) {', '.join(missing)} (present: "
                            f"{', '.join(labels.column_names)})")
    labels = labelled_rows(labels, keys, label)
    for key in keys:  # the label file's key types follow the scored rows'
        index, wanted = labels.column_names.index(key), predictions.schema.field(key).type
        try:
            labels = labels.set_column(index, key, pc.cast(labels.column(key), wanted))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise FeedbackError(f"the label rows' key '{key}' ({labels.schema.field(key).type}) cannot be read as "
                                f"the scored rows' {wanted}: {error}") from None
    return _join_carrying_nested(predictions, _one_label_per_key(labels, keys, label), keys)


def _one_label_per_key(labels: pa.Table, keys: list[str], label: str) -> pa.Table:
    """The distinct (keys, label) rows; a key given two different labels is an error naming one of them."""
    distinct = labels.group_by([*keys, label], use_threads=False).aggregate([])
    counts = distinct.group_by(keys, use_threads=False).aggregate([([], "count_all")])
    if counts.num_rows == distinct.num_rows == labels.num_rows:
        return labels
    disagree = counts.filter(pc.greater(counts.column("count_all"), 1))
    if disagree.num_rows:
        example = ", ".join(f"{k}={disagree.column(k)[0].as_py()!r}" for k in keys)
        raise FeedbackError(f"{disagree.num_rows} key(s) have label rows that disagree on '{label}' (e.g. "
                            f"{example}); keep one label per key in the labels source")
    return distinct


def _join_carrying_nested(predictions: pa.Table, labels: pa.Table, keys: list[str]) -> pa.Table:
    """``predictions.join(labels, keys)`` (inner); Arrow's join takes no list columns (a multiclass model's
    probabilities), so they are joined as row numbers and taken afterwards."""
    nested = [f.name for f in predictions.schema if pa.types.is_nested(f.type)]
    if not nested:
        return predictions.join(labels, keys, join_type="inner")
    row = "_row"
    while row in predictions.column_names or row in labels.column_names:
        row = f"_{row}"
    flat = predictions.drop_columns(nested).append_column(row, pa.array(np.arange(predictions.num_rows)))
    joined = flat.join(labels, keys, join_type="inner")
    taken = joined.column(row)
    for name in nested:
        joined = joined.append_column(name, predictions.column(name).take(taken))
    return joined.drop_columns([row])


def realized_metrics(joined: pa.Table, task: str, label: str, labels_to_y: Callable[[pa.ChunkedArray], np.ndarray],
                     evaluate: Callable[[np.ndarray, np.ndarray], dict]) -> dict[int, dict[str, Any]]:
    """{version: {"rows", "metrics"}} over the joined rows of each model version."""
    out: dict[int, dict[str, Any]] = {}
    if joined.num_rows == 0:
        return out
    versions = joined.column("model_version").to_numpy()
    for version in sorted({int(v) for v in versions}):
        rows = joined.filter(pa.array(versions == version))
        if task == MULTICLASS:
            pred = np.asarray(rows.column("probabilities").combine_chunks().flatten().to_numpy(), np.float32)
            pred = pred.reshape(rows.num_rows, -1)
        else:
            pred = rows.column("score").to_numpy().astype(np.float32)
        out[version] = {"rows": rows.num_rows, "metrics": evaluate(labels_to_y(rows.column(label)), pred)}
    return out


def drop_rules(registered: dict[str, Any], max_drop: dict[str, float]) -> tuple[list[dict[str, Any]], list[str]]:
    """Thresholds that breach on a drop of more than ``max_drop[m]`` below the registered metric ``m``
    (above it for metrics where lower is better), and notes for metrics the version was not registered with."""
    metrics = registered.get("metrics", registered) if isinstance(registered, dict) else {}
    rules, notes = [], []
    for metric, drop in sorted(max_drop.items()):
        value = metrics.get(metric)
        if not isinstance(value, (int, float)):
            notes.append(f"{metric}: the version was registered without it; its drop is not judged")
            continue
        bound = value - drop if METRIC_DIRECTIONS.get(metric) == "maximize" else value + drop
        rules.append({"metric": metric, "min" if METRIC_DIRECTIONS.get(metric) == "maximize" else "max": bound,
                      "reason": f"registered {value:.4g}, max drop {drop:g}"})
    return rules, notes
