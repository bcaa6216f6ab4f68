"""Shadow comparison: champion and challenger score the same rows; do they agree well enough?"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from loopc.runtime.evaluate.evaluation import evaluate_predictions
from loopc.runtime.gate.decide import DEFAULT_DIRECTIONS, GateError, improvement

BINARY, MULTICLASS, REGRESSION = "binary_classification", "multiclass_classification", "regression"


class ShadowError(ValueError):
    """Shadow inputs are unusable (mismatched rows, unknown task); the message says how to fix it."""


@dataclass(frozen=True)
class ShadowResult:
    """Verdict of a shadow comparison; ``drops[m]`` is how much worse the challenger is on metric m."""

    passed: bool
    rows: int
    agreement: float
    champion_metrics: dict[str, Any] = field(default_factory=dict, hash=False)
    challenger_metrics: dict[str, Any] = field(default_factory=dict, hash=False)
    drops: dict[str, float | None] = field(default_factory=dict, hash=False)
    summary: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def agreement_mask(task: str, champion: np.ndarray, challenger: np.ndarray, *, rtol=0.1, atol=1e-6) -> np.ndarray:
    """Per row, True where the two models agree (see the module docstring)."""
    if task == BINARY:
        return (champion.reshape(-1) >= 0.5) == (challenger.reshape(-1) >= 0.5)
    if task == MULTICLASS:
        return np.argmax(champion, axis=1) == np.argmax(challenger, axis=1)
    if task == REGRESSION:
        a, b = champion.reshape(-1), challenger.reshape(-1)
        return np.abs(a - b) <= np.maximum(rtol * np.maximum(np.abs(a), np.abs(b)), atol)
    raise ShadowError(f"unknown task '{task}'; use {BINARY}, {MULTICLASS} or {REGRESSION}")


def _as_predictions(task: str, pred: Any, name: str) -> np.ndarray:
    array = np.asarray(pred, dtype=np.float64)
    if task == MULTICLASS and array.ndim != 2:
        raise ShadowError(f"{name} predictions for multiclass must be [rows, classes], got shape {array.shape}")
    return array if task == MULTICLASS else array.reshape(len(array), -1)[:, -1]


def _drops(shadow: dict, champ: dict, chall: dict, directions: dict[str, str]) -> dict[str, float | None]:
    drops = {}
    for metric in sorted(shadow.get("max_metric_drop", {})):
        old, new = champ.get(metric), chall.get(metric)
        if old is None or new is None:
            drops[metric] = None
            continue
        try:
            drops[metric] = -improvement(metric, float(new), float(old), relative=False, directions=directions)
        except GateError as error:
            raise ShadowError(str(error)) from error
    return drops


def compare_shadow(
    task: str,
    champion_pred: Any,
    challenger_pred: Any,
    y_true: Any | None,
    shadow: dict[str, Any],
    *,
    rtol: float = 0.1,
    atol: float = 1e-6,
    directions: dict[str, str] | None = None,
) -> ShadowResult:
    """Compare the two models on the same rows against ``shadow`` (``Shadow.model_dump(mode="json")``).

    Passed iff rows >= min_rows, agreement >= min_agreement and, with labels, every
    ``max_metric_drop`` holds (a metric undefined on these rows fails its drop check).

    Agreement per row: binary = the same label at threshold 0.5; multiclass = the same argmax;
    regression = within ``shadow["regression_tolerance"]`` (else ``rtol``, 10%) of the larger magnitude, or within ``atol`` (for values
    near zero). With labels, each model's metrics come from ``evaluate_predictions`` and every
    ``max_metric_drop`` must hold; without labels those drops cannot be measured and are
    reported as not checked (they do not fail the shadow).
    """
    champion = _as_predictions(task, champion_pred, "champion")
    challenger = _as_predictions(task, challenger_pred, "challenger")
    if champion.shape != challenger.shape:
        raise ShadowError(f"champion scored {champion.shape} but challenger {challenger.shape}: use the same rows")
    rows = int(len(champion))
    rtol = float(shadow.get("regression_tolerance", rtol))  # the spec's deploy.shadow.regression_tolerance
    agreement = float(np.mean(agreement_mask(task, champion, challenger, rtol=rtol, atol=atol))) if rows else 0.0
    champ_metrics, chall_metrics, drops = {}, {}, {}
    if y_true is not None:
        champ_metrics = evaluate_predictions(task, y_true, champion)
        chall_metrics = evaluate_predictions(task, y_true, challenger)
        drops = _drops(shadow, champ_metrics, chall_metrics, {**DEFAULT_DIRECTIONS, **(directions or {})})
    problems = _problems(shadow, rows, agreement, drops, labelled=y_true is not None)
    passed = not problems
    summary = "passed: " if passed else "failed: "
    summary += "; ".join(problems) if problems else f"{rows} rows, agreement {agreement:.4f}"
    if y_true is None and shadow.get("max_metric_drop"):
        summary += " (no labels: metric drops not checked)"
    return ShadowResult(passed, rows, agreement, champ_metrics, chall_metrics, drops, summary)


def _problems(shadow: dict, rows: int, agreement: float, drops: dict, *, labelled: bool) -> list[str]:
    problems = []
    min_rows, min_agreement = int(shadow.get("min_rows", 100)), float(shadow.get("min_agreement", 0.9))
    if rows < min_rows:
        problems.append(f"{rows} rows < min_rows {min_rows}")
    if agreement < min_agreement:
        problems.append(f"agreement {agreement:.4f} < min_agreement {min_agreement:.4g}")
    for metric, limit in sorted(shadow.get("max_metric_drop", {}).items()) if labelled else []:
        drop = drops.get(metric)
        if drop is None:
            problems.append(f"{metric} is undefined on these rows, so its drop cannot be checked")
        elif drop > limit:
            problems.append(f"{metric} drops by {drop:.4g} > max_metric_drop {limit:.4g}")
    return problems
