"""The monitor step kind: live rows vs the champion's reference; a breach retrains or alerts (cooldown)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopc.runtime.data.checks import enforce_schema, parse_duration
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.formats import file_format
from loopc.runtime.data.rows import RowFile, ValidatedRows
from loopc.runtime.data.snapshot import Snapshot, read_snapshot, take_snapshot
from loopc.runtime.evaluate.metrics import MULTICLASS
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.monitor.live import LiveColumns
from loopc.runtime.steps.common import ModelBundle, current_champion, load_bundle
from loopc.runtime.steps.split_scores import ChunkedPredictor
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact

CHART_LIMITS = {"psi": "psi_max", "js": "js_max"}


def _live_batches(ctx: StepContext, monitor: dict[str, Any], now: float, columns: list[str],
                  required: Sequence[str] = ()) -> Iterator[pa.Table]:
    """The monitor source's ``columns`` (read from one snapshot, never the state directory) by record batches,
    cast to the dataset schema, limited to ``window`` when one is set. Parquet files without hive partitions
    are read a batch at a time in place; other sources whole, as one batch. A file lacking a ``required``
    column declared not nullable is an error (its rows would be read as null), as the validate step has it."""
    try:
        snapshot = take_snapshot(monitor["source"], ctx.root, exclude=[ctx.state], content=False)
        if _streamable(snapshot):
            rows, names = _source_rows(snapshot, ctx.config["columns"])
            _every_file_carries(names, required, ctx.config["columns"])
            raw = (batch for _, batch in rows.batches([c for c in columns if c in rows.names]))
        else:
            source = read_snapshot(snapshot)  # a metadata snapshot: the read hashes each file once
            _every_file_carries({p.path: p.columns for p in source.parts}, required, ctx.config["columns"])
            table = source.table
            present = set(table.column_names)
            raw = iter([table.select([c for c in columns if c in present])])
        for batch in raw:
            yield _window(_cast(ctx, batch), monitor, now)
    except DataError as exc:
        raise StepFailed(f"monitor '{ctx.config['monitor_name']}': {exc}") from None


def _streamable(snapshot: Snapshot) -> bool:
    return snapshot.source.get("partitioning") != "hive" and all(
        file_format(snapshot.source, entry.name) == "parquet" for entry in snapshot.entries)


def _every_file_carries(names: dict[str, Any], required: Sequence[str], declared: dict[str, dict]) -> None:
    """A DataError naming the files (``names``: path -> its columns) that lack a required non-nullable column."""
    needed = [c for c in required if c in declared and not declared[c].get("nullable", True)]
    lacking = {path: [c for c in needed if c not in columns] for path, columns in names.items()}
    lacking = {path: missing for path, missing in lacking.items() if missing}
    if lacking and len(lacking) < len(names):  # lacking in every file: the live rows lack it (LiveColumns says so)
        path, missing = next(iter(lacking.items()))
        raise DataError(f"{len(lacking)} of {len(names)} file(s) lack column(s) the monitor reads, declared not "
                        f"nullable (their rows would be read as null), e.g. '{path}' lacks {', '.join(missing)}; "
                        "write every column into each file of the monitor source")


def _source_rows(snapshot: Snapshot, columns: dict) -> tuple[ValidatedRows, dict[str, list[str]]]:
    """The snapshot's Parquet files as rows read in place, uncast, named by the columns their footers list;
    and each file's columns."""
    filesystem, files, names, per_file = snapshot.files.filesystem, [], {}, {}
    for entry in snapshot.entries:
        path = snapshot.path(entry)
        try:
            with filesystem.open_input_file(path) as handle:
                metadata = pq.ParquetFile(handle).metadata
        except (OSError, pa.ArrowException) as error:
            raise DataError(f"cannot read parquet file '{path}': {error}") from None
        files.append(RowFile(path, entry.size, entry.mtime_ns, metadata.num_rows))
        per_file[path] = metadata.schema.to_arrow_schema().names
        names.update(dict.fromkeys(per_file[path]))
    return ValidatedRows(filesystem, tuple(files), columns, False, tuple(names)), per_file


def _cast(ctx: StepContext, batch: pa.Table) -> pa.Table:
    present = set(batch.column_names)
    declared = {c: s for c, s in ctx.config["columns"].items() if c in present}
    return enforce_schema(batch, declared, ctx.config["monitor_name"])[0]


def _window(batch: pa.Table, monitor: dict[str, Any], now: float) -> pa.Table:
    window, column = monitor.get("window"), monitor.get("time_column")
    if not (window and column and column in batch.column_names):
        return batch
    cutoff = pa.scalar(int((now - parse_duration(window)) * 1e6), pa.timestamp("us", tz="UTC"))
    times = pc.cast(batch.column(column), pa.timestamp("us", tz="UTC"))
    return batch.filter(pc.fill_null(pc.greater_equal(times, cutoff), False))


@dataclass
class LiveLabels:
    """The labels of the live rows whose labels arrived (the champion's classes), added batch by batch,
    which rows those are, and why the labels could not be read (empty when they could)."""

    bundle: ModelBundle
    labels: list = field(default_factory=list)
    labelled: list = field(default_factory=list)
    error: str = ""

    def add(self, batch: pa.Table) -> None:
        label = self.bundle.model["label"]
        if label not in batch.column_names:
            self.labelled.append(np.zeros(batch.num_rows, bool))
            return
        arrived = pc.invert(pc.is_null(batch.column(label)))
        if not self.error:
            try:
                self.labels.append(self.bundle.labels(batch.filter(arrived)))
            except StepFailed as exc:
                self.error = f"the live labels could not be read: {exc}"
        self.labelled.append(np.asarray(arrived))


@dataclass
class LiveRead:
    """What the monitor keeps of its live rows: the column tally, the champion's predictions and the
    labels (when scored), and the batches read."""

    columns: LiveColumns
    predictor: ChunkedPredictor | None
    labels: LiveLabels | None
    batches: int = 0

    def add(self, batch: pa.Table) -> None:
        self.batches += 1
        self.columns.add(batch)
        if self.predictor is not None:
            self.predictor.add(batch)
            self.labels.add(batch)


def _read_live(ctx: StepContext, monitor: dict[str, Any], bundle: ModelBundle, profile: dict, now: float,
               score: bool) -> LiveRead:
    """Every live batch tallied (and scored when ``score``): memory follows the batch size plus a few
    floats per row."""
    from loopc.runtime.monitor.verdict import MonitorError, report_columns

    try:
        live = LiveRead(LiveColumns(profile, report_columns(profile, monitor.get("data_drift"))),
                        ChunkedPredictor(bundle) if score else None, LiveLabels(bundle) if score else None)
        required = sorted({*live.columns.nulls, *bundle.fitted.input_columns,
                           *([monitor["time_column"]] if monitor.get("time_column") else [])})
        columns = sorted({*required, bundle.model["label"]})  # labels may arrive in some files only
        for batch in _live_batches(ctx, monitor, now, columns, required):
            live.add(batch)
    except MonitorError as exc:
        raise StepFailed(f"monitor '{ctx.config['monitor_name']}': {exc}") from None
    return live


def _performance_metrics(bundle: ModelBundle, rows: LiveLabels | None,
                         pred: np.ndarray | None) -> tuple[dict | None, str]:
    """(the champion's metrics on the live rows whose labels have arrived, or None; why they are None).
    ``rows``: their labels collected batch by batch (None when the rows were not scored)."""
    from loopc.runtime.evaluate.evaluation import evaluate_predictions

    labelled = np.concatenate(rows.labelled) if rows is not None and rows.labelled else np.zeros(0, bool)
    if pred is None or not labelled.any():
        return None, f"no labelled live rows yet (label column '{bundle.model['label']}')"
    if rows.error:
        return None, rows.error
    return evaluate_predictions(bundle.task, np.concatenate(rows.labels), pred[labelled],
                                num_classes=bundle.num_classes), ""


def live_scores_needed(monitor: dict[str, Any], have_stored_scores: bool) -> bool:
    """Whether the champion must score the live rows: for performance on their labels (no ``labels``
    section) or for prediction drift the stored predictions cannot give."""
    if monitor.get("labels"):
        return monitor.get("prediction_drift") is not None and not have_stored_scores
    return bool(monitor.get("performance")) or monitor.get("prediction_drift") is not None


def _charts(report: dict[str, Any], data_drift: dict[str, Any] | None) -> dict[str, Any]:
    """Per-statistic {column: value} and its limit, for the HTML report's bar charts."""
    statistics: dict[str, dict[str, float]] = {}
    for column, stats in report["columns"].items():
        for method in ("psi", "js"):
            if stats.get(method) is not None:
                statistics.setdefault(method, {})[column] = stats[method]
    limits = {m: (data_drift or {}).get(key) for m, key in CHART_LIMITS.items()}
    return {"statistics": statistics, "limits": {m: v for m, v in limits.items() if v is not None}}


def _decide_action(ctx: StepContext, monitor: dict[str, Any], breach: bool, now: float) -> tuple[str, str]:
    """(action, note): the configured action on a breach, unless the cooldown holds it back."""
    from loopc.runtime.monitor.verdict import cooldown_allows, record_trigger

    if not breach:
        return "none", ""
    action = monitor["action"]
    state_file = ctx.state / "monitors" / f"{ctx.config['monitor_name']}.json"
    cooldown = parse_duration(action.get("cooldown", "24h"))
    if not cooldown_allows(state_file, cooldown, now):
        return "none", f"breach, but the cooldown of {action.get('cooldown')} since the last trigger holds it back"
    record_trigger(state_file, now, details={"run_id": ctx.run_id, "action": action["on_breach"]})
    return action["on_breach"], f"action {action['on_breach']}"


def run_monitor(ctx: StepContext) -> dict[str, Any]:
    """Drift, prediction drift, data quality and performance of live rows against the champion."""
    from loopc.runtime.monitor.verdict import MonitorError, drift_report

    monitor, model = ctx.config["monitor"], ctx.config["model"]
    champion = current_champion(ctx, model["name"])
    if champion is None:
        return {"action": "none", "breach": False, "summary": f"no champion of '{model['name']}' yet; run `loopc run` first"}
    bundle = load_bundle(local_artifact(ctx.state, champion.artifact))
    profile = bundle.profile()
    if profile is None:
        raise StepFailed(f"champion version {champion.version} has no reference profile; retrain it with `loopc run`")
    now = time.time()
    performance, feedback, pred = monitor.get("performance"), None, None
    if monitor.get("labels"):  # realized metrics from stored predictions and late labels (runtime/steps/feedback)
        from loopc.runtime.steps.feedback import realized

        feedback = realized(ctx, monitor["labels"], bundle, champion, now)
        metrics, unjudged, performance = feedback.metrics, feedback.unjudged, [*(performance or []), *feedback.rules]
        if bundle.task != MULTICLASS:
            pred = feedback.scores
    score = live_scores_needed(monitor, pred is not None)
    live = _read_live(ctx, monitor, bundle, profile, now, score)
    live_scored = score and bool(live.columns.rows)
    if live_scored:
        pred = live.predictor.result()
    if feedback is None:
        metrics, unjudged = _performance_metrics(bundle, live.labels, pred)
    try:
        report = drift_report(profile, live.columns, pred, data_drift=monitor.get("data_drift"),
                              prediction_drift=monitor.get("prediction_drift"), performance=performance,
                              metrics=metrics, unjudged=unjudged, max_null_rate=monitor.get("max_null_rate"),
                              min_rows=int(monitor.get("min_rows", 1)))
    except MonitorError as exc:
        raise StepFailed(f"monitor '{ctx.config['monitor_name']}': {exc}") from None
    action, note = _decide_action(ctx, monitor, report.breach, now)
    reported = report.to_dict()
    details = {**reported, **_charts(reported, monitor.get("data_drift")), "action": action,
               "note": note, "champion_version": champion.version, "live_rows_scored": live_scored}
    if feedback is not None:
        details["realized"] = {str(v): r for v, r in feedback.versions.items()}
        details["notes"] = [*details.get("notes", []), *feedback.notes]
    atomic_write_json(ctx.out_dir / "drift.json", details)
    if report.breach:
        ctx.registry.record_event("monitor_breach", model["name"], champion.version, f"loopc monitor {ctx.run_id}",
                                  report.summary, {"action": action, "monitor": ctx.config["monitor_name"]},
                                  event_key=f"{ctx.run_id}/{ctx.doc.id}")
    for unknown in report.notes:
        ctx.log.warning("%s", unknown)
    ctx.log.info("%s; action %s %s", report.summary, action, note)
    return {"action": action, "breach": report.breach, "status": report.status, "rows": report.rows,
            "drifted": len(report.drifted), "summary": report.summary + (f" ({note})" if note else ""),
            "champion_version": champion.version, "batches": live.batches}
