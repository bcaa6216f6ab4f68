"""The monitor's ``labels`` section at run time: stored predictions joined with late labels, realized
metrics per model version, and the champion's metrics and drop rules the monitor judges."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loopc.runtime.data.checks import enforce_schema, parse_duration
from loopc.runtime.data.errors import DataError, NoFiles
from loopc.runtime.data.snapshot import read_snapshot, take_snapshot
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.monitor.feedback import (
    FeedbackError,
    drop_rules,
    join_labels,
    labelled_rows,
    read_predictions,
    realized_metrics,
)
from loopc.runtime.steps.common import ModelBundle, label_vector


@dataclass
class Realized:
    """What the labels say: metrics per version, the champion's (or why not), extra rules, stored scores."""

    versions: dict[int, dict[str, Any]]
    metrics: dict[str, Any] | None
    unjudged: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    scores: np.ndarray | None = None  # the champion's stored scores in the window (prediction drift)


def _labels(ctx: StepContext, source: dict[str, Any]):
    table = read_snapshot(take_snapshot(source, ctx.root, exclude=[ctx.state])).table
    declared = {c: s for c, s in ctx.config["columns"].items() if c in table.column_names}
    cast, _ = enforce_schema(table, declared, f"{ctx.config['monitor_name']} labels")
    return cast


def realized(ctx: StepContext, labels: dict[str, Any], bundle: ModelBundle, champion, now: float) -> Realized:
    """Join the scoring output under ``labels.predictions`` with the rows of ``labels.source``."""
    from loopc.runtime.evaluate.evaluation import evaluate_predictions

    folder = Path(labels["predictions"])
    folder = folder if folder.is_absolute() else ctx.root / folder
    since = None
    if labels.get("window"):
        since = dt.datetime.fromtimestamp(now - parse_duration(labels["window"]), dt.UTC)
    label = bundle.model["label"]
    rules, notes = drop_rules(champion.metrics, labels.get("max_drop") or {})
    try:
        predictions = read_predictions(folder, labels["keys"], bundle.task, since)
        try:
            arrived = _labels(ctx, labels["source"])
        except NoFiles as exc:  # labels come later than predictions: nothing to judge yet, not a failure
            why = f"no labels yet ({exc})"
            return Realized({}, None, why, rules, notes, _stored_scores(predictions, champion.version))
        joined = join_labels(predictions, arrived, labels["keys"], label)
        versions = realized_metrics(
            joined, bundle.task, label, lambda column: label_vector(column, bundle.task, bundle.classes),
            lambda y, pred: evaluate_predictions(bundle.task, y, pred, num_classes=bundle.num_classes))
    except (FeedbackError, DataError) as exc:
        raise StepFailed(f"monitor '{ctx.config['monitor_name']}' labels: {exc}") from None
    mine = versions.get(champion.version)
    scores = _stored_scores(predictions, champion.version)
    if mine is None or mine["rows"] < int(labels.get("min_rows", 50)):
        have = 0 if mine is None else mine["rows"]
        why = f"{have} labelled prediction(s) of version {champion.version}, fewer than labels.min_rows"
        usable = labelled_rows(arrived, labels["keys"], label).num_rows if predictions.num_rows else 0
        if joined.num_rows == 0 and usable:
            why += (f"; none of the {usable} labelled rows has the {', '.join(labels['keys'])} of a stored "
                    "prediction: check labels.keys and that the label rows hold the key values scoring wrote")
        return Realized(versions, None, why, rules, notes, scores)
    return Realized(versions, mine["metrics"], "", rules, notes, scores)


def _stored_scores(predictions: pa.Table, version: int) -> np.ndarray | None:
    """The scores ``version`` wrote in the window (prediction drift), or None."""
    if not predictions.num_rows or "score" not in predictions.column_names:
        return None
    own = predictions.filter(np.asarray(predictions.column("model_version").to_numpy() == version))
    return own.column("score").to_numpy().astype(np.float32) if own.num_rows else None
