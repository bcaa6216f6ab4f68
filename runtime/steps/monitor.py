"""The monitor step kind: live rows vs the champion's reference; a breach retrains or alerts (cooldown)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.checks import enforce_schema, parse_duration
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import read_snapshot, take_snapshot
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.common import ModelBundle, current_champion, load_bundle
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact

CHART_LIMITS = {"psi": "psi_max", "js": "js_max"}


def _live_rows(ctx: StepContext, monitor: dict[str, Any], now: float) -> pa.Table:
    """The monitor source (read from one snapshot, never the state directory), cast to the dataset
    schema, limited to ``window`` when one is set."""
    try:
        table = read_snapshot(take_snapshot(monitor["source"], ctx.root, exclude=[ctx.state])).table
    except DataError as exc:
        raise StepFailed(f"monitor '{ctx.config['monitor_name']}': {exc}") from None
    declared = {c: s for c, s in ctx.config["columns"].items() if c in table.column_names}
    cast, _ = enforce_schema(table, declared, ctx.config["monitor_name"])
    window, column = monitor.get("window"), monitor.get("time_column")
    if window and column and column in cast.column_names:
        cutoff = pa.scalar(int((now - parse_duration(window)) * 1e6), pa.timestamp("us", tz="UTC"))
        times = pc.cast(cast.column(column), pa.timestamp("us", tz="UTC"))
        cast = cast.filter(pc.fill_null(pc.greater_equal(times, cutoff), False))
    return cast


def _performance_metrics(bundle: ModelBundle, rows: pa.Table, pred: np.ndarray | None) -> tuple[dict | None, str]:
    """(the champion's metrics on the live rows whose labels have arrived, or None; why they are None)."""
    from loopc.runtime.evaluate.evaluation import evaluate_predictions

    label = bundle.model["label"]
    if pred is None or label not in rows.column_names or rows.column(label).null_count == rows.num_rows:
        return None, f"no labelled live rows yet (label column '{label}')"
    labelled = pc.invert(pc.is_null(rows.column(label)))
    try:
        y = bundle.labels(rows.filter(labelled))
    except StepFailed as exc:
        return None, f"the live labels could not be read: {exc}"
    return evaluate_predictions(bundle.task, y, pred[np.asarray(labelled)], num_classes=bundle.num_classes), ""


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
    rows = _live_rows(ctx, monitor, now)
    performance, feedback, pred = monitor.get("performance"), None, None
    if monitor.get("labels"):  # realized metrics from stored predictions and late labels (runtime/steps/feedback)
        from loopc.runtime.steps.feedback import realized

        feedback = realized(ctx, monitor["labels"], bundle, champion, now)
        metrics, unjudged, performance = feedback.metrics, feedback.unjudged, [*(performance or []), *feedback.rules]
        if bundle.task != "multiclass_classification":
            pred = feedback.scores
    live_scored = bool(rows.num_rows) and live_scores_needed(monitor, pred is not None)
    if live_scored:
        pred = bundle.score(rows)
    if feedback is None:
        metrics, unjudged = _performance_metrics(bundle, rows, pred)
    try:
        report = drift_report(profile, rows, pred, data_drift=monitor.get("data_drift"),
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
            "champion_version": champion.version}
