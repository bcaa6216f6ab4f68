"""Data step kinds: validate (schema, checks, fingerprint), split, features (fit on train, apply to all)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.data import checks
from loopc.runtime.data.columnwise import validate_in_place
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import file_format
from loopc.runtime.data.rows import (
    ROWS_FILE,
    ValidatedRows,
    batch_rows,
    describe_source,
    describe_table,
    memory_budget,
    open_rows,
    write_table,
)
from loopc.runtime.data.snapshot import Snapshot, read_snapshot, take_snapshot, verify_files
from loopc.runtime.data.split import assign_splits, split_columns, split_counts
from loopc.runtime.execution import runs
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.execution.step import StepDoc
from loopc.runtime.features.transforms import feature_columns
from loopc.runtime.steps.common import SPLITS, label_classes, label_vector, read_json
from loopc.runtime.store.artifacts import atomic_write_bytes, atomic_write_json, local_artifact

TABLE, SNAPSHOT = "table.parquet", "snapshot.json"
ASSIGNMENT, SPLIT_FILE, PROFILE_SKETCH = "assignment.npy", "split.json", "profile_sketch.json"


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Turn an OSError while writing ``path`` (a full disk, no permission) into StepFailed naming it."""
    try:
        yield path
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StepFailed(f"cannot write '{path}': {reason}; free space or fix permissions there and run again") from None


def source_snapshot(doc: StepDoc, root: Path) -> Snapshot:
    """The files a validate step reads, fixed once by their size and mtime (its cache input and lineage).

    No byte is read here: the validate step digests the content as it reads it, and register
    re-digests it (``verify_sources``). StepFailed if unreadable. Files inside the project's state
    directory are never data.
    """
    try:
        return take_snapshot(doc.config["dataset"]["source"], root, exclude=[runs.state_path(root, doc.state_dir)],
                             content=False)
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


def _readable_in_place(source: dict, snapshot: Snapshot) -> bool:
    """Parquet files without hive columns: downstream reads them and casts per batch (nothing rewritten)."""
    if source.get("partitioning") == "hive":
        return False
    try:
        return all(file_format(source, entry.name) == "parquet" for entry in snapshot.entries)
    except DataError:
        return False


def _write_rows(ctx: StepContext, read: Snapshot, parts, names: list[str], cast: pa.Table | None) -> str:
    """rows.json: the snapshot's own files when they are read in place, else the cast table (written once)."""
    columns = ctx.config["dataset"]["columns"]
    if cast is None:
        record = describe_source(read.to_dict(), [part.rows for part in parts], columns)
    else:
        with writing(ctx.out_dir / TABLE) as path:
            write_table(cast, path)
        record = describe_table(ctx.out_dir / TABLE, cast.num_rows, columns)
    record["names"] = list(names)
    with writing(ctx.out_dir / ROWS_FILE) as path:
        atomic_write_json(path, record)
    return record["layout"]


def _validate(snapshot: Snapshot, name: str, dataset: dict, now: dt.datetime):
    """(report, files as read, their parts, column names, the cast table or None when read in place).

    Parquet sources are validated one column at a time and never held whole; others in memory.
    """
    if _readable_in_place(dataset["source"], snapshot):
        result = validate_in_place(snapshot, name, dataset, now)
        return result.report, result.entries, result.parts, result.names, None
    files = read_snapshot(snapshot)
    cast, violations = checks.enforce_schema(files.table, dataset["columns"], name, files)
    results = checks.run_checks(cast, dataset.get("checks", []), now)
    report = checks.validation_report(name, violations, results, rows=files.table.num_rows)
    return report, files.entries, files.parts, cast.column_names, cast


def run_validate(ctx: StepContext) -> dict[str, Any]:
    """Read the snapshot's files, enforce the schema, run the checks; fail with every violation named.

    The rows are not written again when the source is Parquet: rows.json says which files to read.
    """
    name, dataset, snapshot = ctx.config["dataset_name"], ctx.config["dataset"], _snapshot(ctx)
    try:
        report, entries, parts, names, cast = _validate(snapshot, name, dataset, dt.datetime.now(dt.timezone.utc))
    except DataError as exc:
        raise StepFailed(f"dataset '{name}': {exc}") from None
    read = snapshot.with_entries(entries)
    report["fingerprint"] = fingerprint = read.digest
    if not report["passed"]:
        where = _write_failure_report(ctx, report)
        raise StepFailed(f"{checks.render_report(report)}\nfull report: {where}\n"
                         "fix the data (or the dataset's schema and checks) and run again")
    for file, content in (("validation.json", report), (SNAPSHOT, read.to_dict())):
        with writing(ctx.out_dir / file) as path:
            atomic_write_json(path, content)
    layout = _write_rows(ctx, read, parts, names, cast)
    ctx.log.info("dataset %s: %d rows (%s), fingerprint %s, %d warning(s)", name, report["rows"], layout,
                 fingerprint, report["warnings"])
    return {"dataset": name, "rows": report["rows"], "fingerprint": fingerprint, "warnings": report["warnings"]}


def run_split(ctx: StepContext) -> dict[str, Any]:
    """Which row goes to train, valid or test: one byte per row (assignment.npy) and the counts.

    Only the split's own column is read; no row is copied.
    """
    validate_id, _ = ctx.upstream_of_kind("validate")
    rows, split = open_rows(ctx.artifact(validate_id)), ctx.config["split"]
    try:
        assignment = assign_splits(_split_input(rows, split), split).astype(np.uint8)
        counts = split_counts(assignment, split)
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    with writing(ctx.out_dir / ASSIGNMENT) as path:
        np.save(path, assignment, allow_pickle=False)
    with writing(ctx.out_dir / SPLIT_FILE) as path:
        atomic_write_json(path, {"format": 1, "split": split, "rows_artifact": ctx.upstream[validate_id]["artifact"],
                                 "counts": counts})
    return {"dataset": ctx.config["dataset_name"], "rows": len(assignment), "split_rows": counts}


def _split_input(rows: ValidatedRows, split: dict) -> pa.Table:
    """The columns a split reads (a row-count placeholder for random); DataError naming a missing one."""
    needed = split_columns(split)
    for name in needed:
        if name not in rows.names:
            raise DataError(f"split method '{split.get('method')}' uses column '{name}', which the table lacks "
                            f"(columns: {', '.join(rows.names)})")
    return rows.read(needed) if needed else pa.table({"row": pa.nulls(rows.num_rows)})


class _TrainColumns:
    """Train rows of a few columns at a time, read in groups that fit the memory budget (in the order
    the features ask for them); profiled columns are sketched as their group passes."""

    def __init__(self, rows: ValidatedRows, train: np.ndarray, profiled: dict[str, dict], plan: list[str]):
        self.rows, self.train, self.profiled, self.sketches = rows, train, profiled, {}
        self.plan = [c for c in dict.fromkeys([*plan, *profiled]) if c in rows.names]
        self.group = max(1, memory_budget() // (32 * max(int(np.count_nonzero(train)), 1)))
        self.table = pa.table({})

    def __call__(self, names: list[str]) -> pa.Table:
        present = [n for n in names if n in self.rows.names]
        if not set(present) <= set(self.table.column_names):
            self._load(present)
        return self.table.select(present)

    def _load(self, names: list[str]) -> None:
        from loopc.runtime.monitor.profile import column_sketch, map_columns

        rest = [c for c in self.plan[self.plan.index(names[-1]) + 1:] if c not in names] if names else []
        group = list(dict.fromkeys([*names, *rest[:max(self.group - len(names), 0)]]))
        self.table = pa.table({})  # the previous group is dropped before the next is read
        self.table = self.rows.read(group, self.train)
        todo = [n for n in group if n in self.profiled and n not in self.sketches]
        sketches = map_columns(lambda n: column_sketch(self.table.column(n), n, self.profiled[n]), todo)
        self.sketches.update(zip(todo, sketches))

    def profile(self) -> dict[str, dict]:
        """The sketch of every profiled column (those no feature read are read now)."""
        while missing := [n for n in self.plan if n in self.profiled and n not in self.sketches]:
            self._load([missing[0]])
        return self.sketches


def _fit(ctx: StepContext, read: _TrainColumns, rows: int):
    from loopc.runtime.features.transforms import FeatureError, fit_features_by_column

    try:
        return fit_features_by_column(read, rows, ordered_features(ctx.config), ctx.config["columns"])
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None


def ordered_features(config: dict[str, Any]) -> dict[str, dict]:
    """The features in ``model.features`` order (the step document's JSON sorts the ``features`` keys):
    the matrix columns, transform.json and every exported artifact follow that order."""
    order = config.get("feature_order") or list(config["features"])
    return {name: config["features"][name] for name in order}


def _profiled(ctx: StepContext, rows: ValidatedRows) -> dict[str, dict]:
    """The profiled columns the train step's reference profile describes, with their specs."""
    return {c: ctx.config["columns"][c] for c in ctx.config["profile_columns"]
            if c in rows.names and c in ctx.config["columns"]}


class _NpyAppender:
    """A float32 .npy file of a known shape, written front to back by appending row blocks.

    Plain writes, not a memory map: written pages are not counted in this process's memory.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.rows, self.written = path, shape[0], 0
        with writing(path):
            self.handle = open(path, "wb")  # noqa: SIM115 (closed in close())
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                      "shape": shape}
            np.lib.format.write_array_header_1_0(self.handle, header)

    def append(self, block: np.ndarray) -> None:
        with writing(self.path):
            self.handle.write(np.ascontiguousarray(block, dtype=np.float32).tobytes())
        self.written += len(block)

    def close(self) -> None:
        with writing(self.path):
            self.handle.close()
        if self.written != self.rows:
            raise StepFailed(f"'{self.path}' got {self.written} rows, expected {self.rows}; the rows changed while "
                             "they were read: run again")


class _SplitWriter:
    """One split's float32 matrix and labels (.npy appended batch by batch, in row order) and slice columns."""

    def __init__(self, out_dir: Path, split: str, rows: int, dim: int):
        self.out_dir, self.split, self.slices = out_dir, split, None
        self.x = _NpyAppender(out_dir / f"x_{split}.npy", (rows, dim))
        self.y = _NpyAppender(out_dir / f"y_{split}.npy", (rows,))

    def add(self, x: np.ndarray, y: np.ndarray, slices: pa.Table) -> None:
        self.x.append(x)
        self.y.append(y)
        with writing(self.out_dir / f"slices_{self.split}.parquet") as path:
            if self.slices is None:
                self.slices = pq.ParquetWriter(path, slices.schema)
            self.slices.write_table(slices)

    def close(self, schema: pa.Schema) -> None:
        self.x.close()
        self.y.close()
        with writing(self.out_dir / f"slices_{self.split}.parquet") as path:
            if self.slices is None:
                pq.write_table(schema.empty_table(), path)
            else:
                self.slices.close()


def _write_matrices(ctx: StepContext, rows: ValidatedRows, assignment: np.ndarray, fitted, classes,
                    counts: dict[str, int], slices: list[str]) -> None:
    """Every split's matrix, labels and slice columns, written batch by batch in row order."""
    from loopc.runtime.features.transforms import FeatureError

    label, task = ctx.config["label"], ctx.config["task"]
    needed = sorted({c for c in fitted.input_columns if c in rows.names} | {label} | set(slices))
    writers = {s: _SplitWriter(ctx.out_dir, s, counts[s], fitted.dim) for s in SPLITS}
    size = batch_rows(4 * (fitted.dim + len(needed)) + 8 * len(needed))
    try:
        for offset, batch in rows.batches(needed, size):
            part = np.asarray(assignment[offset:offset + batch.num_rows])
            x, y = fitted.apply(batch), label_vector(batch.column(label), task, classes)
            for index, split in enumerate(SPLITS):
                keep = part == index
                if keep.any():
                    writers[split].add(x[keep], y[keep], batch.select(slices).filter(pa.array(keep)))
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    for split, writer in writers.items():
        writer.close(pa.schema([pa.field(c, pa.string()) for c in slices]))


def open_split(state: Path, split_dir: Path) -> tuple[ValidatedRows, np.ndarray, dict]:
    """(the validated rows, the per-row split index, split.json) of a split artifact."""
    record = read_json(split_dir / SPLIT_FILE)
    return open_rows(local_artifact(state, record["rows_artifact"])), np.load(split_dir / ASSIGNMENT, mmap_mode="r"), record


def run_features(ctx: StepContext) -> dict[str, Any]:
    """Fit transforms on train only (one feature's columns at a time); write every split's float32
    matrix, labels and slice columns batch by batch, and the profiled train columns' sketches."""
    split_id, split_record = ctx.upstream_of_kind("split")
    rows, assignment, record = open_split(ctx.state, ctx.artifact(split_id))
    counts, label, task = record["counts"], ctx.config["label"], ctx.config["task"]
    if label not in rows.names:
        raise StepFailed(f"model '{ctx.config['model_name']}': label column '{label}' is not in the dataset")
    plan = [c for feature in ctx.config["features"].values() for c in feature_columns(feature)] + [label]
    read = _TrainColumns(rows, np.asarray(assignment) == 0, _profiled(ctx, rows), plan)
    try:
        fitted = _fit(ctx, read, counts["train"])
        classes = label_classes(task, read([label]).column(label))
        profile = read.profile()
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    with writing(ctx.out_dir / "transform.json") as path:
        path.write_text(fitted.to_json(), encoding="utf-8")
    with writing(ctx.out_dir / "labels.json") as path:
        atomic_write_json(path, {"task": task, "label": label, "classes": classes})
    slices = [c for c in ctx.config["slice_columns"] if c in rows.names]
    _write_matrices(ctx, rows, assignment, fitted, classes, counts, slices)
    with writing(ctx.out_dir / PROFILE_SKETCH) as path:  # compact: the C encoder, not indent's Python one
        atomic_write_bytes(path, json.dumps({"rows": counts["train"], "columns": profile}, sort_keys=True,
                                            separators=(",", ":")).encode("utf-8"))
    return {"model": ctx.config["model_name"], "features": fitted.dim, "split_artifact": split_record["artifact"],
            "rows": counts, "classes": classes}


def split_rows(state: Path, split_artifact: str, split: str) -> pa.Table:
    """Every column of one split's rows (the rows gate and shadow score with both models)."""
    rows, assignment, _ = open_split(state, local_artifact(state, split_artifact))
    try:
        return rows.read(rows.names, np.asarray(assignment) == SPLITS.index(split))
    except DataError as exc:
        raise StepFailed(str(exc)) from None


def verify_sources(ctx: StepContext) -> None:
    """Before a model is registered: every validated file still holds the bytes it was trained on."""
    for step_id, record in ctx.upstream.items():
        if record.get("kind") == "validate":
            try:
                verify_files(read_json(ctx.artifact(step_id) / SNAPSHOT))
            except DataError as exc:
                raise StepFailed(f"dataset of step '{step_id}': {exc}") from None
