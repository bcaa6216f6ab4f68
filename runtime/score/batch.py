"""Stream rows through a bundle and write predictions as partitioned Parquet, published atomically.

Layout of OUTPUT (docs/scoring.md)::

    OUTPUT/version=<N>/batch=<batch id>/part-00000.parquet

A batch's folder is written under ``OUTPUT/.staging-<batch id>-<hex>/`` and renamed into place
last, so readers (``pyarrow.dataset`` skips names starting with '.') never see half a batch, and
each partition names the model version that produced it even when the champion changes between runs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from loopc.runtime.data.errors import DataError, reason
from loopc.runtime.data.formats import CsvText, common_format, dataset_format, scan_batches
from loopc.runtime.data.predictions import WRITE_COLUMNS, probabilities_refused, replaced_keys
from loopc.runtime.export import bundle_score
from loopc.runtime.score.cast import InputCast
from loopc.runtime.score.resolve import ScoreError

WRITABLE = tuple(WRITE_COLUMNS)
BATCH_ROWS = 262144
_BATCH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def batch_name(run_id: str) -> str:
    """A run id as a partition name (an Airflow run id holds ':' and '+')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", run_id)[:128] or "batch"


@dataclass(frozen=True)
class ScoreJob:
    """What to score and where: the spec's ``scoring`` section, resolved to paths."""

    source: str
    output: Path
    keys: tuple[str, ...] = ()
    write: tuple[str, ...] = ("score", "label", "model_version", "timestamp")
    batch_id: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ"))
    batch_rows: int = BATCH_ROWS
    files: tuple[str, ...] = ()  # the source resolved to files (a glob), read through ``filesystem``
    filesystem: Any = None
    format: str | None = None  # parquet or csv; default: csv when every file (or the path) ends in .csv
    options: dict = field(default_factory=dict)  # a CSV source's options (delimiter, quote_char, ...)

    @property
    def file_format(self) -> str:
        """The declared format, else the one the files' (or the path's) extensions name; a folder is Parquet."""
        try:
            return common_format({"format": self.format}, self.files or (self.source,), default="parquet")
        except DataError as exc:
            raise ScoreError(f"cannot read the rows to score at '{self.source}': {exc}") from None


def _dataset(job: ScoreJob, text: CsvText) -> ds.Dataset:
    """The rows to score; CSV columns in ``text`` are read as strings (InputCast parses them as declared)."""
    try:
        fmt = dataset_format(job.file_format, dict(job.options), text)
        if job.files:
            return ds.dataset(list(job.files), filesystem=job.filesystem, format=fmt)
        return ds.dataset(job.source, format=fmt, partitioning="hive")
    except (OSError, ValueError, pa.ArrowInvalid, DataError) as exc:
        raise ScoreError(f"cannot read the rows to score at '{job.source}': {reason(exc)}") from None


def _columns(model: bundle_score.Model, job: ScoreJob, dataset: ds.Dataset) -> list[str]:
    if not getattr(dataset, "files", True):
        raise ScoreError(f"'{job.source}' holds no {job.file_format} file to score")
    needed = list(dict.fromkeys([*job.keys, *model.input_columns]))
    missing = [c for c in needed if c not in dataset.schema.names]
    if missing:
        raise ScoreError(f"the rows at '{job.source}' lack column(s) {', '.join(missing)} "
                         f"(present: {', '.join(dataset.schema.names)})")
    return needed


def prediction_table(model: bundle_score.Model, batch: pa.RecordBatch, job: ScoreJob, version: int | None,
                     scored_at: dt.datetime) -> pa.Table:
    """One record batch's keys and the outputs ``job.write`` asks for."""
    pred = model.raw_predictions(model.features(bundle_score.table_columns(batch, model.schema)))
    out = bundle_score.outputs(model.task, model.classes, pred)
    columns: dict[str, pa.Array] = {k: batch.column(k) for k in job.keys}
    if "score" in job.write:
        columns["score"] = pa.array(out["score"], pa.float32())
    if "label" in job.write:
        columns["label"] = pa.array(out["label"]) if model.task != "regression" else pa.array(out["label"], pa.float32())
    if "probabilities" in job.write and "probabilities" in out:
        flat = pa.array(np.ascontiguousarray(out["probabilities"], np.float32).reshape(-1))
        columns["probabilities"] = pa.FixedSizeListArray.from_arrays(flat, len(model.classes))
    if "model_version" in job.write:
        columns["model_version"] = pa.array(np.full(batch.num_rows, -1 if version is None else version, np.int64))
    if "timestamp" in job.write:
        micros = int(scored_at.timestamp() * 1_000_000)
        columns[WRITE_COLUMNS["timestamp"]] = pa.array(np.full(batch.num_rows, micros, np.int64)).cast(pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def check_outputs(task: str, write: tuple[str, ...], keys: tuple[str, ...] = ()) -> None:
    """Refuse outputs this model cannot give: an unknown name, none at all, or probabilities of a model that is
    not multiclass (they were silently left out); and keys named as an output column or a partition, which
    the output would replace."""
    clashes, taken = replaced_keys(write, keys)
    if clashes:
        raise ScoreError(f"key column(s) {', '.join(clashes)} have the name of an output or partition column "
                         f"({', '.join(taken)}), which would replace them; rename them in the input or write fewer outputs")
    unknown = [w for w in write if w not in WRITABLE]
    if unknown or not write:
        raise ScoreError(f"cannot write {', '.join(unknown) or 'nothing'}; choose from {', '.join(WRITABLE)}")
    if probabilities_refused(task == "multiclass_classification", write):
        score = "P(y=1)" if task == "binary_classification" else "the predicted value"
        raise ScoreError(f"only a multiclass model writes probabilities; this {task} model's score is {score}: "
                         "write score instead")


def score_to_parquet(model: bundle_score.Model, job: ScoreJob, version: int | None) -> dict:
    """Score every row of ``job.source`` and publish ``OUTPUT/version=<N>/batch=<id>/``; returns a summary."""
    if not _BATCH_ID.match(job.batch_id):
        raise ScoreError(f"batch id '{job.batch_id}' must be letters, digits, '.', '_' or '-'")
    check_outputs(model.task, job.write, job.keys)
    cast = InputCast(model.schema, csv=job.file_format == "csv", keys=job.keys)
    dataset = _dataset(job, cast.text)
    columns = _columns(model, job, dataset)
    final = job.output / f"version={'none' if version is None else version}" / f"batch={job.batch_id}"
    if final.exists():
        raise ScoreError(f"'{final}' exists: batch '{job.batch_id}' was written already; use another batch id")
    staging = job.output / f".staging-{job.batch_id}-{uuid.uuid4().hex[:8]}"
    scored_at, rows = dt.datetime.now(dt.UTC), 0
    try:
        staging.mkdir(parents=True)
        rows = _write_parts(model, dataset, columns, job, version, scored_at, staging / "part-00000.parquet", cast)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging, final)
    except OSError as exc:
        raise ScoreError(f"cannot write predictions to '{job.output}': {exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {"rows": rows, "output": str(final), "version": version, "batch": job.batch_id,
            "scored_at": scored_at.isoformat()}


def _scanned(dataset: ds.Dataset, columns: list[str], job: ScoreJob) -> Iterator[ds.TaggedRecordBatch]:
    """The dataset's non-empty record batches; ScoreError naming the source for one that cannot be read."""
    try:
        yield from scan_batches(dataset, columns, job.batch_rows)
    except DataError as exc:
        raise ScoreError(f"cannot read the rows to score at '{job.source}': {exc}") from None


def _write_parts(model, dataset, columns, job, version, scored_at, path: Path, cast: InputCast) -> int:
    writer, rows = None, 0
    try:
        for tagged in _scanned(dataset, columns, job):
            batch = cast(tagged.record_batch, tagged.fragment)
            table = prediction_table(model, batch, job, version, scored_at)
            writer = writer or pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            rows += batch.num_rows
        if writer is None:
            schema = pa.schema([dataset.schema.field(c) for c in columns])
            empty = prediction_table(model, pa.RecordBatch.from_pylist([], schema=schema), job, version, scored_at)
            pq.write_table(empty, path)
    finally:
        if writer is not None:
            writer.close()
    return rows
