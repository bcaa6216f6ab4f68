"""Governance policy per risk class (EU AI Act tiers), as a table: LPC3xx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from loopc.compiler.spec.crossrefs import Issue
from loopc.compiler.spec.models import Spec


@dataclass(frozen=True)
class Rule:
    """A requirement a spec of some risk class must meet."""

    code: str
    path: tuple[str, ...]
    holds: Callable[[Spec], bool]
    message: str
    hint: str


_OWNER = Rule("LPC302", ("pipeline", "owner"), lambda s: bool(s.pipeline.owner),
              "risk class '{risk}' requires pipeline.owner", "name the accountable team or person, e.g. an email")
_INTENDED_USE = Rule("LPC303", ("pipeline", "intended_use"), lambda s: bool(s.pipeline.intended_use),
                     "risk class '{risk}' requires pipeline.intended_use",
                     "say what the model is for and what it must not be used for")
_FAIRNESS = Rule("LPC304", ("gate", "fairness"), lambda s: bool(s.gate.fairness),
                 "risk class '{risk}' requires at least one fairness gate",
                 "add gate.fairness: [{column: ..., metric: demographic_parity_difference, max: 0.1}]")
_APPROVAL = Rule("LPC305", ("deploy", "approval"), lambda s: s.deploy.approval == "manual",
                 "risk class '{risk}' requires human approval of every promotion", "set deploy.approval: manual")
_FORBIDDEN = Rule("LPC301", ("pipeline", "risk_class"), lambda s: False,
                  "risk class 'unacceptable' is prohibited (EU AI Act art. 5); loopc will not build it",
                  "such systems may not be deployed; reassess the use case")

POLICY: dict[str, tuple[Rule, ...]] = {
    "minimal": (),
    "limited": (_OWNER, _INTENDED_USE),
    "high": (_OWNER, _INTENDED_USE, _FAIRNESS, _APPROVAL),
    "unacceptable": (_FORBIDDEN,),
}


def check_policy(spec: Spec) -> list[Issue]:
    """Every rule of the spec's risk class that the spec breaks."""
    risk = spec.pipeline.risk_class
    return [Issue(rule.path, rule.code, rule.message.format(risk=risk), rule.hint)
            for rule in POLICY[risk] if not rule.holds(spec)]
