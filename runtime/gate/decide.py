"""Gate decisions: may a candidate replace the champion? Pure: evaluation results in, decision out."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from loopc.runtime.evaluate.metrics import METRIC_DIRECTIONS as DEFAULT_DIRECTIONS


class GateError(ValueError):
    """A gate cannot be decided as asked (unknown metric direction, override not allowed, no reason).

    The message says what and how to fix it; it is shown without a traceback.
    """


@dataclass(frozen=True)
class GateCheck:
    """One rule applied to one number. ``skipped`` checks (too few rows) are reported, never failed."""

    rule: str
    metric: str
    value: float | None
    bound: float | None
    passed: bool
    detail: str
    scope: str = ""
    skipped: bool = False


@dataclass(frozen=True)
class GateDecision:
    """The verdict: ``status`` is passed, rejected, needs_approval or overridden."""

    passed: bool
    status: str
    checks: tuple[GateCheck, ...]
    summary: str
    override: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def failures(self) -> list[GateCheck]:
        return [check for check in self.checks if not check.passed]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checks"] = [asdict(check) for check in self.checks]
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> GateDecision:
        checks = tuple(GateCheck(**check) for check in data["checks"])
        return GateDecision(data["passed"], data["status"], checks, data["summary"], data["override"])


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _number(value: Any) -> float | None:
    """A finite float, or None for missing, non-numeric or NaN values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def check_bounds(
    rule: str, metric: str, value: Any, low: float | None, high: float | None, scope: str = ""
) -> list[GateCheck]:
    """Checks of ``low <= value <= high`` (either bound may be None); a missing value fails."""
    where = f"{scope}: " if scope else ""
    number = _number(value)
    if number is None:
        bound = low if low is not None else high
        return [GateCheck(rule, metric, None, bound, False, f"{where}{metric} was not computed", scope)]
    checks = []
    if low is not None:
        ok = number >= low
        detail = f"{where}{metric} {_fmt(number)} {'>=' if ok else '<'} min {_fmt(low)}"
        checks.append(GateCheck(rule, metric, number, low, ok, detail, scope))
    if high is not None:
        ok = number <= high
        detail = f"{where}{metric} {_fmt(number)} {'<=' if ok else '>'} max {_fmt(high)}"
        checks.append(GateCheck(rule, metric, number, high, ok, detail, scope))
    return checks


def improvement(
    metric: str, candidate: float, champion: float, *, relative: bool, directions: dict[str, str]
) -> float:
    """How much better the candidate is in the metric's good direction (a ratio when ``relative``)."""
    direction = directions.get(metric)
    if direction not in ("maximize", "minimize"):
        raise GateError(
            f"no direction known for metric '{metric}'; known: {', '.join(sorted(directions))} "
            "(pass directions={'metric': 'maximize' | 'minimize'})"
        )
    gain = candidate - champion if direction == "maximize" else champion - candidate
    if not relative:
        return gain
    if champion == 0:
        return 0.0 if gain == 0 else math.copysign(math.inf, gain)
    return gain / abs(champion)


def _threshold_checks(gate: dict, candidate: dict) -> list[GateCheck]:
    checks = []
    for rule in gate["thresholds"]:
        value = candidate["metrics"].get(rule["metric"])
        checks += check_bounds("threshold", rule["metric"], value, rule["min"], rule["max"])
    return checks


def _champion_checks(gate: dict, candidate: dict, champion: dict, directions: dict[str, str]) -> list[GateCheck]:
    checks = []
    for rule in gate["champion"]:
        metric, min_delta, relative = rule["metric"], float(rule["min_delta"]), bool(rule["relative"])
        new = _number(candidate["metrics"].get(metric))
        old = _number(champion["metrics"].get(metric))
        if new is None or old is None:
            detail = f"{metric} of the {'candidate' if new is None else 'champion'} was not computed"
            checks.append(GateCheck("champion", metric, None, min_delta, False, detail))
            continue
        delta = improvement(metric, new, old, relative=relative, directions=directions)
        ok = delta >= min_delta
        kind = "relative improvement" if relative else "improvement"
        detail = (
            f"{metric} {_fmt(new)} vs champion {_fmt(old)}: {kind} {_fmt(delta)} "
            f"{'>=' if ok else '<'} min_delta {_fmt(min_delta)}"
        )
        checks.append(GateCheck("champion", metric, delta, min_delta, ok, detail))
    return checks


def _slice_checks(gate: dict, candidate: dict) -> list[GateCheck]:
    checks = []
    slices = candidate["slices"]
    for rule in gate["slices"]:
        column, metric, min_rows = rule["column"], rule["metric"], int(rule["min_rows"])
        if column not in slices:
            detail = f"no slice results for column '{column}'; evaluate with it among the slice columns"
            checks.append(GateCheck("slice", metric, None, None, False, detail, column))
            continue
        for group in sorted(slices[column], key=str):
            result, scope = slices[column][group], f"{column}={group}"
            rows = int(result["rows"])
            if rows < min_rows:
                detail = f"{scope}: {rows} rows < min_rows {min_rows}, not judged"
                checks.append(GateCheck("slice", metric, _number(result.get(metric)), None, True, detail, scope, True))
                continue
            checks += check_bounds("slice", metric, result.get(metric), rule["min"], rule["max"], scope)
    return checks


def _fairness_checks(gate: dict, candidate: dict) -> list[GateCheck]:
    checks = []
    for rule in gate["fairness"]:
        gap = candidate["fairness"].get(rule["column"], {}).get(rule["metric"])
        checks += check_bounds("fairness", rule["metric"], gap, None, rule["max"], rule["column"])
    return checks


def _no_champion_checks(gate: dict) -> list[GateCheck]:
    policy = gate["no_champion"]
    if policy == "reject":
        return [GateCheck("no_champion", "", None, None, False, "no champion exists and the policy is 'reject'")]
    detail = f"no champion exists: policy '{policy}'"
    return [GateCheck("no_champion", "", None, None, True, detail)]


def _verdict(gate: dict, checks: list[GateCheck], has_champion: bool) -> str:
    if any(not check.passed for check in checks):
        return "rejected"
    if not has_champion and gate["no_champion"] == "require_approval":
        return "needs_approval"
    return "passed"


def _summary(status: str, checks: list[GateCheck], override: dict | None) -> str:
    judged = [c for c in checks if not c.skipped]
    failed = [c.detail for c in judged if not c.passed]
    skipped = sum(c.skipped for c in checks)
    tail = f"; {skipped} slice group(s) too small to judge" if skipped else ""
    if status == "overridden":
        why = "; ".join(failed) or "approval required"
        return f"overridden by {override['actor']}: {override['reason']} (would have failed: {why}){tail}"
    if status == "rejected":
        return f"rejected: {'; '.join(failed)}{tail}"
    if status == "needs_approval":
        return f"needs approval: all {len(judged)} checks passed but there is no champion{tail}"
    return f"passed: all {len(judged)} checks passed{tail}"


def _check_override(gate: dict, override: dict) -> dict:
    policy = gate["override"]
    if not policy["allowed"]:
        raise GateError("this gate does not allow manual overrides (gate.override.allowed is false)")
    if not override.get("actor"):
        raise GateError("a gate override needs an 'actor': who takes responsibility for it")
    if policy["require_reason"] and not str(override.get("reason", "")).strip():
        raise GateError("a gate override needs a 'reason' (gate.override.require_reason is true); say why")
    return {"actor": str(override["actor"]), "reason": str(override.get("reason", ""))}


def decide_gate(
    gate: dict[str, Any],
    *,
    task: str,
    candidate: dict[str, Any],
    champion: dict[str, Any] | None,
    override: dict[str, Any] | None = None,
    directions: dict[str, str] | None = None,
) -> GateDecision:
    """Apply every rule of ``gate`` to ``candidate`` (against ``champion`` when there is one).

    ``override`` ({"actor", "reason"}) turns a rejected or needs-approval verdict into
    ``overridden`` (passed) and is recorded in the decision; GateError if the gate forbids
    overrides or a required reason is missing. ``directions`` adds or replaces metric
    directions ("maximize" / "minimize") on top of DEFAULT_DIRECTIONS. ``task`` only decides
    whether fairness rules are allowed: GateError for them on a regression task.

    ``gate`` is ``Gate.model_dump(mode="json")`` (every key present); ``candidate`` and
    ``champion`` are evaluation results ``{"metrics": {name: value}, "slices": {column: {value:
    {metric: v, "rows": n}}}, "fairness": {column: {metric: gap}}}`` computed on the same rows
    (``champion`` needs only "metrics").
    """
    directions = {**DEFAULT_DIRECTIONS, **(directions or {})}
    checks = _threshold_checks(gate, candidate)
    has_champion = champion is not None
    checks += _champion_checks(gate, candidate, champion, directions) if has_champion else _no_champion_checks(gate)
    checks += _slice_checks(gate, candidate)
    if gate["fairness"] and task == "regression":
        raise GateError("fairness thresholds need a classification task; remove gate.fairness for regression")
    checks += _fairness_checks(gate, candidate)
    status = _verdict(gate, checks, has_champion)
    recorded = None
    if override is not None:
        recorded = _check_override(gate, override)
        if status != "passed":
            status = "overridden"
    summary = _summary(status, checks, recorded)
    return GateDecision(status in ("passed", "overridden"), status, tuple(checks), summary, recorded)
