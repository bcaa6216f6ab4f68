"""Data step kinds: validate (schema, checks, fingerprint), split, features (fit on train, apply to all)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.data import checks
from loopc.runtime.data import sources as data
from loopc.runtime.data.split import split_table
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.execution.step import StepDoc
from loopc.runtime.steps.common import SPLITS, label_classes, label_vector
from loopc.runtime.store.artifacts import atomic_write_json

TABLE = "table.parquet"
PROFILE_ROWS, PROFILE_COLUMNS = "profile_rows.parquet", "profile_columns.json"


def source_fingerprint(doc: StepDoc, root: Path) -> str:
    """The dataset version a validate step reads (its cache input); StepFailed if unreadable."""
    try:
        return data.fingerprint_source(doc.config["dataset"]["source"], root)
    except data.DataError as exc:
        raise StepFailed(f"dataset '{doc.config['dataset_name']}': {exc}") from None


def _write_failure_report(ctx: StepContext, report: dict[str, Any]) -> Path:
    """A failed validation publishes no artifact: its report goes beside the run records."""
    path = ctx.state / "runs" / ctx.run_id / "reports" / f"{ctx.doc.id}.validation.json"
    atomic_write_json(path, report)
    return path


def run_validate(ctx: StepContext) -> dict[str, Any]:
    """Read the source, enforce the schema, run the checks; fail with every violation named."""
    name, dataset = ctx.config["dataset_name"], ctx.config["dataset"]
    try:
        table = data.read_source(dataset["source"], ctx.root)
        fingerprint = data.fingerprint_source(dataset["source"], ctx.root)
    except data.DataError as exc:
        raise StepFailed(f"dataset '{name}': {exc}") from None
    cast, violations = checks.enforce_schema(table, dataset["columns"], name)
    results = checks.run_checks(cast, dataset.get("checks", []), dt.datetime.now(dt.timezone.utc))
    report = checks.validation_report(name, violations, results, rows=table.num_rows)
    report["fingerprint"] = fingerprint
    if not report["passed"]:
        where = _write_failure_report(ctx, report)
        raise StepFailed(f"{checks.render_report(report)}\nfull report: {where}\n"
                         "fix the data (or the dataset's schema and checks) and run again")
    atomic_write_json(ctx.out_dir / "validation.json", report)
    pq.write_table(cast, ctx.out_dir / TABLE)
    ctx.log.info("dataset %s: %d rows, fingerprint %s, %d warning(s)", name, cast.num_rows, fingerprint,
                 report["warnings"])
    return {"dataset": name, "rows": cast.num_rows, "fingerprint": fingerprint, "warnings": report["warnings"]}


def run_split(ctx: StepContext) -> dict[str, Any]:
    """Deterministic train/valid/test tables of the validated dataset."""
    validate_id, _ = ctx.upstream_of_kind("validate")
    table = pq.read_table(ctx.artifact(validate_id) / TABLE)
    try:
        parts = split_table(table, ctx.config["split"])
    except data.DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    for split, part in parts.items():
        pq.write_table(part, ctx.out_dir / f"{split}.parquet")
    rows = {split: part.num_rows for split, part in parts.items()}
    return {"dataset": ctx.config["dataset_name"], "rows": sum(rows.values()), "split_rows": rows}


def _fit(ctx: StepContext, train: pa.Table):
    from loopc.runtime.features.transforms import FeatureError, fit_features

    try:
        return fit_features(train, ctx.config["features"], ctx.config["columns"])
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None


def _save_profile_rows(ctx: StepContext, train: pa.Table) -> None:
    """The train rows (profiled columns only) the train step profiles with the model's predictions."""
    columns = {c: ctx.config["columns"][c] for c in ctx.config["profile_columns"]
               if c in train.column_names and c in ctx.config["columns"]}
    pq.write_table(train.select(list(columns)), ctx.out_dir / PROFILE_ROWS)
    atomic_write_json(ctx.out_dir / PROFILE_COLUMNS, columns)


def run_features(ctx: StepContext) -> dict[str, Any]:
    """Fit transforms on train only; save them, every split's matrix, labels and slice columns."""
    split_id, split_record = ctx.upstream_of_kind("split")
    tables = {s: pq.read_table(ctx.artifact(split_id) / f"{s}.parquet") for s in SPLITS}
    label, task = ctx.config["label"], ctx.config["task"]
    if label not in tables["train"].column_names:
        raise StepFailed(f"model '{ctx.config['model_name']}': label column '{label}' is not in the dataset")
    fitted = _fit(ctx, tables["train"])
    classes = label_classes(task, tables["train"].column(label))
    (ctx.out_dir / "transform.json").write_text(fitted.to_json(), encoding="utf-8")
    atomic_write_json(ctx.out_dir / "labels.json", {"task": task, "label": label, "classes": classes})
    slices = [c for c in ctx.config["slice_columns"] if c in tables["train"].column_names]
    for split, table in tables.items():
        np.save(ctx.out_dir / f"x_{split}.npy", fitted.apply(table), allow_pickle=False)
        np.save(ctx.out_dir / f"y_{split}.npy", label_vector(table.column(label), task, classes), allow_pickle=False)
        pq.write_table(table.select(slices), ctx.out_dir / f"slices_{split}.parquet")
    _save_profile_rows(ctx, tables["train"])
    return {"model": ctx.config["model_name"], "features": fitted.dim, "split_artifact": split_record["artifact"],
            "rows": {s: t.num_rows for s, t in tables.items()}, "classes": classes}
