"""The metric names loopc knows: which tasks produce each, and in which direction it is better.

No dependencies, so the compiler's validator and the runtime's gates share one table.
"""

from __future__ import annotations

BINARY, MULTICLASS, REGRESSION = "binary_classification", "multiclass_classification", "regression"

METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "auc": ((BINARY,), "maximize"),
    "log_loss": ((BINARY, MULTICLASS), "minimize"),
    "accuracy": ((BINARY, MULTICLASS), "maximize"),
    "precision": ((BINARY,), "maximize"),
    "recall": ((BINARY,), "maximize"),
    "f1": ((BINARY,), "maximize"),
    "calibration_error": ((BINARY,), "minimize"),
    "brier": ((BINARY,), "minimize"),
    "macro_f1": ((MULTICLASS,), "maximize"),
    "rmse": ((REGRESSION,), "minimize"),
    "mae": ((REGRESSION,), "minimize"),
    "r2": ((REGRESSION,), "maximize"),
    "demographic_parity_difference": ((BINARY,), "minimize"),
    "equal_opportunity_difference": ((BINARY,), "minimize"),
    "val_loss": ((BINARY, MULTICLASS, REGRESSION), "minimize"),
}

METRIC_DIRECTIONS: dict[str, str] = {name: direction for name, (_, direction) in METRICS.items()}


class EvaluateError(ValueError):
    """Evaluation inputs are unusable: the message says what and how to fix it."""


def metric_direction(name: str) -> str:
    """``"maximize"`` or ``"minimize"`` for a metric name, or an EvaluateError listing the names."""
    if name not in METRICS:
        raise EvaluateError(f"unknown metric '{name}'; known metrics: {', '.join(sorted(METRICS))}")
    return METRICS[name][1]


def task_metrics(task: str) -> list[str]:
    """The per-row metrics ``evaluate.evaluate_predictions`` returns for ``task``."""
    return [n for n, (tasks, _) in METRICS.items() if task in tasks and n not in _NOT_PER_ROW]


_NOT_PER_ROW = {"demographic_parity_difference", "equal_opportunity_difference", "val_loss"}
