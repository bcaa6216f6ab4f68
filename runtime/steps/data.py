"""Data step kinds: validate (schema, checks, fingerprint), split, features (fit on train, apply to all)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.data import checks
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import Snapshot, read_snapshot, take_snapshot
from loopc.runtime.data.split import split_table
from loopc.runtime.execution import runs
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.execution.step import StepDoc
from loopc.runtime.steps.common import SPLITS, label_classes, label_vector
from loopc.runtime.store.artifacts import atomic_write_json

TABLE, SNAPSHOT = "table.parquet", "snapshot.json"
PROFILE_ROWS, PROFILE_COLUMNS = "profile_rows.parquet", "profile_columns.json"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Turn an OSError while writing ``path`` (a full disk, no permission) into StepFailed naming it."""
    try:
        yield path
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StepFailed(f"cannot write '{path}': {reason}; free space or fix permissions there and run again") from None


def source_snapshot(doc: StepDoc, root: Path) -> Snapshot:
    """The files a validate step reads, fixed once (its cache input and lineage); StepFailed if unreadable.

    Files inside the project's state directory are never data.
    """
    try:
        return take_snapshot(doc.config["dataset"]["source"], root, exclude=[runs.state_path(root, doc.state_dir)])
    except DataError as exc:
        raise StepFailed(f"dataset '{doc.config['dataset_name']}': {exc}") from None


def _write_failure_report(ctx: StepContext, report: dict[str, Any]) -> Path:
    """A failed validation publishes no artifact: its report goes beside the run records."""
    path = ctx.state / "runs" / ctx.run_id / "reports" / f"{ctx.doc.id}.validation.json"
    with writing(path):
        atomic_write_json(path, report)
    return path


def _snapshot(ctx: StepContext) -> Snapshot:
    """The snapshot the runner took for the cache key: the step reads exactly those files."""
    if not isinstance(ctx.inputs, Snapshot):
        raise StepFailed(f"step '{ctx.doc.id}' got no source snapshot from the runner; run it with "
                         "`python -m loopc.runtime run-step`")
    return ctx.inputs


def run_validate(ctx: StepContext) -> dict[str, Any]:
    """Read the snapshot's files, enforce the schema, run the checks; fail with every violation named."""
    name, dataset, snapshot = ctx.config["dataset_name"], ctx.config["dataset"], _snapshot(ctx)
    try:
        files = read_snapshot(snapshot)
    except DataError as exc:
        raise StepFailed(f"dataset '{name}': {exc}") from None
    cast, violations = checks.enforce_schema(files.table, dataset["columns"], name, files)
    results = checks.run_checks(cast, dataset.get("checks", []), dt.datetime.now(dt.timezone.utc))
    report = checks.validation_report(name, violations, results, rows=files.table.num_rows)
    report["fingerprint"] = fingerprint = snapshot.digest
    if not report["passed"]:
        where = _write_failure_report(ctx, report)
        raise StepFailed(f"{checks.render_report(report)}\nfull report: {where}\n"
                         "fix the data (or the dataset's schema and checks) and run again")
    for file, content in (("validation.json", report), (SNAPSHOT, snapshot.to_dict())):
        with writing(ctx.out_dir / file) as path:
            atomic_write_json(path, content)
    with writing(ctx.out_dir / TABLE) as path:
        pq.write_table(cast, path)
    ctx.log.info("dataset %s: %d rows, fingerprint %s, %d warning(s)", name, cast.num_rows, fingerprint,
                 report["warnings"])
    return {"dataset": name, "rows": cast.num_rows, "fingerprint": fingerprint, "warnings": report["warnings"]}


def run_split(ctx: StepContext) -> dict[str, Any]:
    """Deterministic train/valid/test tables of the validated dataset."""
    validate_id, _ = ctx.upstream_of_kind("validate")
    table = pq.read_table(ctx.artifact(validate_id) / TABLE)
    try:
        parts = split_table(table, ctx.config["split"])
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    for split, part in parts.items():
        with writing(ctx.out_dir / f"{split}.parquet") as path:
            pq.write_table(part, path)
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
    with writing(ctx.out_dir / PROFILE_ROWS) as path:
        pq.write_table(train.select(list(columns)), path)
    with writing(ctx.out_dir / PROFILE_COLUMNS) as path:
        atomic_write_json(path, columns)


def _save_split(ctx: StepContext, split: str, x: np.ndarray, y: np.ndarray, slices: pa.Table) -> None:
    """One split's feature matrix, labels and slice columns."""
    for name, array in ((f"x_{split}.npy", x), (f"y_{split}.npy", y)):
        with writing(ctx.out_dir / name) as path:
            np.save(path, array, allow_pickle=False)
    with writing(ctx.out_dir / f"slices_{split}.parquet") as path:
        pq.write_table(slices, path)


def run_features(ctx: StepContext) -> dict[str, Any]:
    """Fit transforms on train only; save them, every split's matrix, labels and slice columns."""
    split_id, split_record = ctx.upstream_of_kind("split")
    tables = {s: pq.read_table(ctx.artifact(split_id) / f"{s}.parquet") for s in SPLITS}
    label, task = ctx.config["label"], ctx.config["task"]
    if label not in tables["train"].column_names:
        raise StepFailed(f"model '{ctx.config['model_name']}': label column '{label}' is not in the dataset")
    fitted = _fit(ctx, tables["train"])
    classes = label_classes(task, tables["train"].column(label))
    with writing(ctx.out_dir / "transform.json") as path:
        path.write_text(fitted.to_json(), encoding="utf-8")
    with writing(ctx.out_dir / "labels.json") as path:
        atomic_write_json(path, {"task": task, "label": label, "classes": classes})
    slices = [c for c in ctx.config["slice_columns"] if c in tables["train"].column_names]
    for split, table in tables.items():
        _save_split(ctx, split, fitted.apply(table), label_vector(table.column(label), task, classes),
                    table.select(slices))
    _save_profile_rows(ctx, tables["train"])
    return {"model": ctx.config["model_name"], "features": fitted.dim, "split_artifact": split_record["artifact"],
            "rows": {s: t.num_rows for s, t in tables.items()}, "classes": classes}
