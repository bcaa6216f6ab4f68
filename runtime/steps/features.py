"""The features step: fit transforms on train only and observe the reference profile; no matrix is written
(train and evaluate apply the transform where they read the rows: steps/matrices)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.rows import ValidatedRows
from loopc.runtime.data.split_record import read_summary
from loopc.runtime.evaluate.metrics import MULTICLASS
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.features.transforms import FeatureError
from loopc.runtime.steps.common import label_classes
from loopc.runtime.steps.files import writing
from loopc.runtime.steps.split_rows import open_split, split_batches
from loopc.runtime.store.artifacts import atomic_write_bytes, atomic_write_json, local_artifact

PROFILE_POINTS = "profile_points.json"
COLUMNS_FILE = "columns.json"


def _fit_pass(ctx: StepContext, rows: ValidatedRows, split_artifact: str, split_record: dict):
    """Fit the transforms on the train rows and observe the profile: from validate's summary of the train
    rows (split_summary) what it determines, the rest in passes of record batches reading only the columns
    still needed (usually none or one pass). (fitted, classes, sketch)"""
    from loopc.runtime.features.fitting import StreamingFit
    from loopc.runtime.monitor.profile import ProfileSketch
    from loopc.runtime.monitor.summarised import summarised_columns

    label, task, train_rows = ctx.config["label"], ctx.config["task"], split_record["counts"]["train"]
    summary = _train_summary(ctx, split_record)
    summaries = {name: summary.column(name) for name in ctx.config["columns"]} if summary else None
    fit = StreamingFit(ordered_features(ctx.config), ctx.config["columns"], train_rows, summaries=summaries)
    profiled = _profiled(ctx, rows)
    known = summarised_columns(profiled, summary, train_rows) if summary else {}
    sketch = ProfileSketch({c: spec for c, spec in profiled.items() if c not in known}, train_rows)
    classes = _summarised_classes(task, summary.column(label) if summary else {})
    labels = _read_passes(ctx, split_artifact, fit, sketch, label if task == MULTICLASS and classes is None else None)
    for name, column in known.items():
        sketch.adopt(name, column, profiled[name]["type"])
    return fit.result(), classes if labels is None else label_classes(task, labels), sketch


def _read_passes(ctx: StepContext, split_artifact: str, fit, sketch, label: str | None) -> pa.ChunkedArray | None:
    """Passes over the train rows while the fit is pending; the first also observes the sketch's columns and
    collects ``label``'s values (returned; None without a label). No pass when nothing needs the rows."""
    labels, passes = [], 0
    while fit.pending or (passes == 0 and (sketch.specs or label is not None)):
        first, fitting = passes == 0, fit.pending
        wanted = [*(fit.columns if fitting else []), *(sketch.specs if first else []),
                  *([label] if first and label is not None else [])]
        for batch in split_batches(ctx.state, split_artifact, "train", list(dict.fromkeys(wanted))):
            if fitting:
                fit.update(batch)
            if first and sketch.specs:
                sketch.observe(batch.select(list(sketch.specs)))
            if first and label is not None:
                labels.append(pc.unique(batch.column(label)))
        if fitting:
            fit.end_pass()
        passes += 1
    return None if label is None else pa.chunked_array(labels)


def _train_summary(ctx: StepContext, split_record: dict):
    """Validate's summary of the train rows of the split ``split_record`` (split.json) describes, or None when
    the validate artifact holds none of them."""
    summary = read_summary(local_artifact(ctx.state, split_record["rows_artifact"]), split_record["split"])
    return summary if summary is not None and summary.counts == split_record["counts"] else None


def _summarised_classes(task: str, column: dict) -> list[Any] | None:
    """A multiclass label's classes from the summary's counts of the train labels (None: read them)."""
    counts = column.get("counts")
    if task != MULTICLASS or counts is None:
        return None
    return label_classes(task, pa.chunked_array([pa.array([value for value, _ in counts["values"]])]))


def ordered_features(config: dict[str, Any]) -> dict[str, dict]:
    """The features in ``model.features`` order (the step document's JSON sorts the ``features`` keys):
    the matrix columns, transform.json and every exported artifact follow that order."""
    order = config.get("feature_order") or list(config["features"])
    return {name: config["features"][name] for name in order}


def _profiled(ctx: StepContext, rows: ValidatedRows) -> dict[str, dict]:
    """The profiled columns the train step's reference profile describes, with their specs."""
    return {c: ctx.config["columns"][c] for c in ctx.config["profile_columns"]
            if c in rows.names and c in ctx.config["columns"]}


def run_features(ctx: StepContext) -> dict[str, Any]:
    """Fit transforms on train only (streamed, usually one pass) and observe the profiled train columns
    (their first pass, points placed: the train step counts them while it builds its matrices)."""
    split_id, split_record = ctx.upstream_of_kind("split")
    rows, _, record = open_split(ctx.state, ctx.artifact(split_id))
    counts, label, task = record["counts"], ctx.config["label"], ctx.config["task"]
    if label not in rows.names:
        raise StepFailed(f"model '{ctx.config['model_name']}': label column '{label}' is not in the dataset")
    if not counts["train"]:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': cannot fit features: the train split "
                         "has no rows")
    try:
        fitted, classes, sketch = _fit_pass(ctx, rows, split_record["artifact"], record)
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None
    with writing(ctx.out_dir / "transform.json") as path:
        path.write_text(fitted.to_json(), encoding="utf-8")
    with writing(ctx.out_dir / "labels.json") as path:
        atomic_write_json(path, {"task": task, "label": label, "classes": classes})
    with writing(ctx.out_dir / COLUMNS_FILE) as path:  # declared types: scoring casts its input the same way
        atomic_write_json(path, ctx.config["columns"])
    with writing(ctx.out_dir / PROFILE_POINTS) as path:  # compact: the C encoder, not indent's Python one
        atomic_write_bytes(path, json.dumps(sketch.observed(), sort_keys=True, separators=(",", ":")).encode("utf-8"))
    return {"model": ctx.config["model_name"], "features": fitted.dim, "split_artifact": split_record["artifact"],
            "rows": counts, "classes": classes}
