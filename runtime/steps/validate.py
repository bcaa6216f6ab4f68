"""The validate step: read a source snapshot, enforce the schema, run the checks; the register step's re-digest."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from loopc.runtime.data import checks
from loopc.runtime.data.batchwise import ValidatedSource, validate_source
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import file_format
from loopc.runtime.data.rows import (
    ROWS_FILE,
    describe_source,
    describe_table,
)
from loopc.runtime.data.snapshot import Snapshot, take_snapshot, verify_files
from loopc.runtime.data.split_record import SUMMARY
from loopc.runtime.execution import runs
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.execution.step import StepDoc
from loopc.runtime.steps.files import read_json, writing
from loopc.runtime.store.artifacts import atomic_write_json

TABLE, SNAPSHOT = "table.parquet", "snapshot.json"

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


def _write_rows(ctx: StepContext, read: Snapshot, validated: ValidatedSource, in_place: bool) -> str:
    """rows.json: the snapshot's own files when they are read in place, else the cast table (written once)."""
    columns = ctx.config["dataset"]["columns"]
    if in_place:
        record = describe_source(read.to_dict(), [part.rows for part in validated.parts], columns)
    else:
        record = describe_table(ctx.out_dir / TABLE, validated.report["rows"], columns)
    record["names"] = list(validated.names)
    with writing(ctx.out_dir / ROWS_FILE) as path:
        atomic_write_json(path, record)
    return record["layout"]


def _validate(ctx: StepContext, snapshot: Snapshot, in_place: bool) -> ValidatedSource:
    """Every file read once, batch by batch; a source not read in place is written once as the cast table."""
    name, dataset = ctx.config["dataset_name"], ctx.config["dataset"]
    now = dt.datetime.now(dt.timezone.utc)
    spool = None if snapshot.local else ctx.scratch_dir("spool")  # a remote file's one download (removed on publish)
    if in_place:
        return validate_source(snapshot, name, dataset, now, spool=spool)
    with writing(ctx.out_dir / TABLE) as path:
        return validate_source(snapshot, name, dataset, now, path, spool)


def run_validate(ctx: StepContext) -> dict[str, Any]:
    """Read the snapshot's files batch by batch, enforce the schema, run the checks; fail with every
    violation named. The rows are not written again when the source is Parquet: rows.json says which
    files to read.
    """
    name, snapshot = ctx.config["dataset_name"], _snapshot(ctx)
    in_place = _readable_in_place(ctx.config["dataset"]["source"], snapshot)
    try:
        validated = _validate(ctx, snapshot, in_place)
    except DataError as exc:
        raise StepFailed(f"dataset '{name}': {exc}") from None
    report, read = validated.report, snapshot.with_entries(validated.entries)
    report["fingerprint"] = fingerprint = read.digest
    if not report["passed"]:
        where = _write_failure_report(ctx, report)
        raise StepFailed(f"{checks.render_report(report)}\nfull report: {where}\n"
                         "fix the data (or the dataset's schema and checks) and run again")
    for file, content in (("validation.json", report), (SNAPSHOT, read.to_dict())):
        with writing(ctx.out_dir / file) as path:
            atomic_write_json(path, content)
    layout = _write_rows(ctx, read, validated, in_place)
    if validated.summary is not None:  # the split's assignment and the train rows' statistics (split_summary)
        with writing(ctx.out_dir / SUMMARY):
            validated.summary.write(ctx.out_dir)
    ctx.log.info("dataset %s: %d rows (%s), fingerprint %s, %d warning(s)", name, report["rows"], layout,
                 fingerprint, report["warnings"])
    return {"dataset": name, "rows": report["rows"], "fingerprint": fingerprint, "warnings": report["warnings"]}


def verify_sources(ctx: StepContext) -> None:
    """Before a model is registered: every validated file still holds the bytes it was trained on."""
    for step_id, record in ctx.upstream.items():
        if record.get("kind") == "validate":
            try:
                verify_files(read_json(ctx.artifact(step_id) / SNAPSHOT))
            except DataError as exc:
                raise StepFailed(f"dataset of step '{step_id}': {exc}") from None
