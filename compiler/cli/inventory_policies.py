"""Named inventory policies for ``loopc inventory --fail-on``: each finds the models that break it.

Validation already refuses what the EU AI Act tiers demand of high-risk specs (spec/policy.py, LPC3xx);
these policies are a governance team's stricter house rules, checked across a whole repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from loopc.compiler.errors import UsageError

_RISKY = ("limited", "high")


@dataclass(frozen=True)
class Policy:
    """A rule over one inventory row (open-breach reads its registry state: never broken under --no-registry)."""

    name: str
    description: str
    broken: Callable[[dict[str, Any]], bool]
    message: str


POLICIES: dict[str, Policy] = {p.name: p for p in (
    Policy("missing-owner", "every model names an owner (pipeline.owner)",
           lambda r: not r["owner"], "no owner"),
    Policy("missing-intended-use", "every model states its intended use (pipeline.intended_use)",
           lambda r: not r["intended_use"], "no intended use"),
    Policy("risky-without-approval", "a limited- or high-risk model needs human approval (deploy.approval: manual)",
           lambda r: r["risk_class"] in _RISKY and r["gates"]["approval"] != "manual",
           "risk class {risk_class} without human approval"),
    Policy("risky-without-fairness-gate", "a limited- or high-risk model has at least one fairness gate",
           lambda r: r["risk_class"] in _RISKY and not r["gates"]["fairness"],
           "risk class {risk_class} without a fairness gate"),
    Policy("no-quality-gate", "every model has at least one metric threshold (gate.thresholds)",
           lambda r: not r["gates"]["thresholds"], "no metric threshold in its gate"),
    Policy("no-monitor", "every model is watched by at least one monitor",
           lambda r: not r["monitors"], "no monitor"),
    Policy("open-breach", "no champion has an open monitor breach (one recorded since its promotion)",
           lambda r: bool(r["registry"] and r["registry"]["open_breaches"]),
           "champion has open monitor breaches"),
)}


def parse_policies(values: list[str]) -> list[Policy]:
    """``--fail-on`` values (comma-separated, repeatable; ``all``) as policies, in the table's order."""
    names = {name.strip() for value in values for name in value.split(",") if name.strip()}
    if values and not names:
        raise UsageError(f"--fail-on names no policy; choose from all, {', '.join(POLICIES)}")
    unknown = sorted(names - set(POLICIES) - {"all"})
    if unknown:
        raise UsageError(f"--fail-on: unknown polic{'ies' if len(unknown) > 1 else 'y'} {', '.join(unknown)}; "
                         f"choose from all, {', '.join(POLICIES)}")
    return [p for name, p in POLICIES.items() if name in names or "all" in names]


def violations(rows: list[dict[str, Any]], policies: list[Policy]) -> list[str]:
    """One line per broken policy per model: ``churn_classifier (churn, FILE): open-breach: ...``."""
    lines = []
    for row in rows:
        for policy in policies:
            if policy.broken(row):
                lines.append(f"{row['model']} ({row['pipeline']}, {row['file']}): {policy.name}: "
                             f"{policy.message.format(**row)}")
    return lines
