"""Monitoring verdicts: live rows against the reference profile, plus the retrain cooldown."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from loopc.runtime.gate.decide import check_bounds
from loopc.runtime.monitor.drift import numeric_drift
from loopc.runtime.monitor.live import LiveColumns, MonitorError
from loopc.runtime.monitor.profile import prediction_values
from loopc.runtime.store.artifacts import atomic_write_json

DEFAULT_DATA_DRIFT = {
    "methods": ["psi", "ks", "chi2"], "psi_max": 0.2, "js_max": 0.1, "p_value": 0.01, "min_drifted": 1,
}  # the spec's DataDrift defaults


@dataclass(frozen=True)
class DriftReport:
    """What a monitor found; ``breach`` is the verdict and ``reasons`` says why."""

    breach: bool
    status: str  # "ok" | "breach" | "insufficient_data"
    rows: int
    columns: dict[str, dict[str, Any]] = field(hash=False)
    drifted: list[str] = field(hash=False)
    prediction: dict[str, Any] | None = field(default=None, hash=False)
    quality: list[dict[str, Any]] = field(default_factory=list, hash=False)
    performance: list[dict[str, Any]] = field(default_factory=list, hash=False)
    reasons: list[str] = field(default_factory=list, hash=False)
    notes: list[str] = field(default_factory=list, hash=False)  # what could not be judged (unknown performance)

    @property
    def summary(self) -> str:
        if self.status == "insufficient_data":
            return self.reasons[0]
        tail = "".join(f"; {note}" for note in self.notes)
        if not self.breach:
            return f"no breach: {self.rows} rows, {len(self.drifted)} of {len(self.columns)} columns drifted{tail}"
        return "breach: " + "; ".join(self.reasons) + tail

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "summary": self.summary}


def _column_verdict(kind: str, stats: dict, config: dict) -> list[str]:
    """Which configured methods flag this column, as readable reasons; a column whose live values are all
    null, where the reference had values, drifts (no statistic can be computed on it)."""
    methods, p_value, reasons = config["methods"], config["p_value"], []
    if stats["null_rate"] == 1.0 and stats["ref_null_rate"] < 1.0:
        return [f"every live value is null (reference null rate {stats['ref_null_rate']:.4g})"]
    if "psi" in methods and stats["psi"] is not None and stats["psi"] > config["psi_max"]:
        reasons.append(f"psi {stats['psi']:.4g} > {config['psi_max']:.4g}")
    if "js" in methods and stats["js"] is not None and stats["js"] > config["js_max"]:
        reasons.append(f"js {stats['js']:.4g} > {config['js_max']:.4g}")
    for method in ("ks",) if kind == "numeric" else ("chi2",):
        value = stats.get(f"{method}_pvalue")
        if method in methods and value is not None and value < p_value:
            reasons.append(f"{method} p-value {value:.3g} < {p_value:.3g}")
    return reasons


def _prediction_drift(profile: dict, predictions: np.ndarray | None, config: dict | None) -> dict | None:
    if config is None:
        return None
    method, limit = config.get("method", "psi"), float(config.get("max", 0.2))
    reference = profile.get("predictions")
    if reference is None or predictions is None:
        missing = "the reference profile has no predictions" if reference is None else "no live predictions were given"
        return {"method": method, "max": limit, "statistic": None, "drifted": False, "note": f"not measured: {missing}"}
    values, _ = prediction_values(predictions)
    stats = numeric_drift([reference], [values[np.isfinite(values)]], threads=1)[0]
    statistic = stats[method]
    drifted = statistic is not None and statistic > limit
    return {"method": method, "max": limit, "statistic": statistic, "drifted": drifted, "note": ""}


def _performance(performance: list | None, metrics: dict | None, unjudged: str) -> list[dict]:
    """One check per rule and bound: status "passed", "failed", or "unknown" (``passed`` None: not judged)."""
    if not performance:
        return []

    def unknown(rule: dict, why: str) -> dict:
        return {"metric": rule["metric"], "status": "unknown", "passed": None, "detail": f"{rule['metric']}: {why}"}

    if metrics is None:
        return [unknown(rule, unjudged) for rule in performance]
    checks = []
    for rule in performance:
        value = metrics.get(rule["metric"])
        if value is None or (isinstance(value, float) and math.isnan(value)):
            checks.append(unknown(rule, "undefined on the labelled live rows"))
            continue
        for check in check_bounds("performance", rule["metric"], value, rule.get("min"), rule.get("max")):
            checks.append({"metric": check.metric, "value": check.value, "bound": check.bound, "passed": check.passed,
                           "status": "passed" if check.passed else "failed", "detail": check.detail})  # fmt: skip
    return checks


def report_columns(profile: dict[str, Any], data_drift: dict[str, Any] | None) -> list[str]:
    """The profiled columns a report compares (``data_drift.columns``, else every one), sorted."""
    names = sorted({**DEFAULT_DATA_DRIFT, **(data_drift or {})}.get("columns") or profile["columns"])
    unknown = [name for name in names if name not in profile["columns"]]
    if unknown:
        raise MonitorError(f"data_drift.columns {', '.join(unknown)} are not in the reference profile; "
                           f"profiled columns: {', '.join(sorted(profile['columns']))}")  # fmt: skip
    return names


def drift_report(
    profile: dict[str, Any],
    table: LiveColumns,
    predictions: np.ndarray | None = None,
    *,
    data_drift: dict[str, Any] | None,
    prediction_drift: dict[str, Any] | None = None,
    performance: list[dict[str, Any]] | None = None,
    metrics: dict[str, Any] | None = None,
    unjudged: str = "no labelled live rows yet",
    max_null_rate: float | None = None,
    min_rows: int = 1,
) -> DriftReport:
    """Compare the live rows (``table``: their ``LiveColumns`` tally, read batch by batch) and the champion's
    ``predictions`` on them with the reference ``profile``.

    ``data_drift`` (None: no column drift checks) picks columns (default: every profiled
    column), methods and thresholds. ``metrics`` are the champion's metrics on the labelled
    live rows, checked against ``performance``; None when they could not be computed, and
    ``unjudged`` says why. A rule that cannot be judged has status "unknown": it neither
    passes nor breaches, and the report's ``notes`` (and summary) say so. Fewer than
    ``min_rows`` rows give status ``insufficient_data`` and no breach.

    ``drift_report`` takes plain dicts shaped like ``model_dump(mode="json")`` of the spec's
    DataDrift, PredictionDrift and Threshold. A column drifts when ANY of the configured methods
    that apply to it crosses its threshold (psi > psi_max, js > js_max, KS or chi-square p-value
    < p_value; KS applies to numeric columns, chi-square to categorical ones). The report
    breaches when at least ``min_drifted`` columns drift, predictions drift, a performance
    threshold fails, or a null rate exceeds ``max_null_rate``.
    """
    rows = table.rows
    if rows < min_rows:
        reason = f"insufficient data: {rows} rows < min_rows {min_rows}; no verdict"
        return DriftReport(False, "insufficient_data", rows, {}, [], reasons=[reason])
    config = {**DEFAULT_DATA_DRIFT, **(data_drift or {})}
    columns = table.statistics()
    for name, stats in columns.items():
        stats["reasons"] = _column_verdict(stats["kind"], stats, config) if data_drift is not None else []
        stats["drifted"] = bool(stats["reasons"])
    drifted = [name for name, stats in columns.items() if stats["drifted"]]
    prediction = _prediction_drift(profile, predictions, prediction_drift)
    quality = _quality(columns, max_null_rate)
    checks = _performance(performance, metrics, unjudged)
    reasons = _reasons(drifted, config, data_drift is not None, prediction, quality, checks)
    notes = [f"performance not judged: {c['detail']}" for c in checks if c["status"] == "unknown"]
    status = "breach" if reasons else "ok"
    return DriftReport(bool(reasons), status, rows, columns, drifted, prediction, quality, checks, reasons,
                       notes)  # fmt: skip


def _quality(columns: dict[str, dict], max_null_rate: float | None) -> list[dict]:
    if max_null_rate is None:
        return []
    return [
        {"column": name, "null_rate": stats["null_rate"], "max": max_null_rate}
        for name, stats in columns.items()
        if stats["null_rate"] > max_null_rate
    ]


def _reasons(drifted, config, checked, prediction, quality, checks) -> list[str]:
    reasons = []
    if checked and len(drifted) >= config["min_drifted"]:
        reasons.append(f"{len(drifted)} columns drifted (min_drifted {config['min_drifted']}): {', '.join(drifted)}")
    if prediction and prediction["drifted"]:
        reasons.append(f"prediction {prediction['method']} {prediction['statistic']:.4g} > {prediction['max']:.4g}")
    for issue in quality:
        reasons.append(f"{issue['column']} null rate {issue['null_rate']:.4g} > max_null_rate {issue['max']:.4g}")
    reasons += [f"performance: {check['detail']}" for check in checks if check["status"] == "failed"]
    return reasons


def _seconds(now: float | datetime) -> float:
    return now.timestamp() if isinstance(now, datetime) else float(now)


def _read_state(state_path: Path) -> dict:
    try:
        state = json.loads(state_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise MonitorError(
            f"cannot read monitor state {state_path}: {error}; delete the file to reset the cooldown"
        ) from error
    if not isinstance(state, dict):
        raise MonitorError(f"monitor state {state_path} is not a JSON object; delete it to reset the cooldown")
    return state


def cooldown_allows(state_path: str | Path, cooldown_seconds: float, now: float | datetime) -> bool:
    """True when no trigger was recorded at ``state_path`` within the last ``cooldown_seconds``."""
    last = _read_state(Path(state_path)).get("last_trigger")
    return last is None or _seconds(now) - float(last) >= cooldown_seconds


def record_trigger(state_path: str | Path, now: float | datetime, *, details: dict[str, Any] | None = None) -> None:
    """Record (atomically) that the monitor triggered its action at ``now`` (epoch seconds or datetime)."""
    path = Path(state_path)
    state = _read_state(path)
    seconds = _seconds(now)
    stamp = datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    state.update({"last_trigger": seconds, "last_trigger_utc": stamp, "triggers": int(state.get("triggers", 0)) + 1})
    if details is not None:
        state["details"] = details
    atomic_write_json(path, state)
