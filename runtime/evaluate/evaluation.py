"""Evaluation metrics per task, per slice of rows, and the direction in which each one is better.

A metric that is undefined on the given rows (AUC with one class present, R2 of a constant
target, anything on zero rows) is ``None``, never NaN; :func:`undefined_metrics` says why.
"""

from __future__ import annotations

import numpy as np

from loopc.runtime.evaluate.metrics import (  # noqa: F401  (the table lives apart so the compiler imports it cheaply)
    BINARY,
    METRIC_DIRECTIONS,
    METRICS,
    MULTICLASS,
    REGRESSION,
    EvaluateError,
    metric_direction,
    task_metrics,
)

EPS = 1e-15
ECE_BINS = 10


def _ratio(num: float, den: float) -> float | None:
    """``num / den`` as a float, or None when ``den`` is 0."""
    return float(num / den) if den else None


def binary_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """Mann-Whitney AUC of finite scores, a tie counting one half; None unless both classes are present.

    From each distinct score's positives and negatives (one sort), in exact integer sums: the pairs a positive
    scores above a negative, twice, plus the tied pairs. NumPy alone: ``scipy.stats`` (rankdata) took 0.6 s
    to import in every step that evaluates.
    """
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(p)
    ordered = p[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))  # each distinct score's first
    pos = np.add.reduceat(y[order].astype(np.int64), starts)
    neg = np.diff(np.append(starts, len(p))) - pos
    below = np.cumsum(neg) - neg  # negatives scored strictly lower
    return (2 * int(pos @ below) + int(pos @ neg)) / (2 * positives * negatives)


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of at least one row over equal-width probability bins (p == 1 in the last)."""
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    gap = np.abs(np.bincount(index, y, bins) - np.bincount(index, p, bins))
    return float(gap.sum() / len(y))


def _binary(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """Binary metrics; thresholded ones at 0.5."""
    clipped = np.clip(p, EPS, 1 - EPS)
    predicted = p >= 0.5
    tp = float(np.sum(predicted & (y == 1)))
    precision = _ratio(tp, float(predicted.sum())) or 0.0
    recall = _ratio(tp, float(y.sum()))
    f1 = None if recall is None else (2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return {
        "auc": binary_auc(y, p),
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "accuracy": float(np.mean(predicted == (y == 1))),
        "precision": precision, "recall": recall, "f1": f1,
        "calibration_error": calibration_error(y, p),
        "brier": float(np.mean((p - y) ** 2)),
    }


def _multiclass(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """Accuracy, log loss (rows renormalized) and macro F1 over classes seen in truth or prediction."""
    y = y.astype(np.int64)
    predicted = np.argmax(p, axis=1)
    probs = np.maximum(p / np.maximum(p.sum(axis=1, keepdims=True), EPS), EPS)
    f1s = []
    for label in np.union1d(y, predicted):
        tp = np.sum((predicted == label) & (y == label))
        denominator = np.sum(predicted == label) + np.sum(y == label)
        f1s.append(2 * tp / denominator)
    return {
        "accuracy": float(np.mean(predicted == y)),
        "log_loss": float(-np.mean(np.log(probs[np.arange(len(y)), y]))),
        "macro_f1": float(np.mean(f1s)),
    }


def _regression(y: np.ndarray, p: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE and R2 (None for a constant target)."""
    residual = y - p
    total = float(np.sum((y - y.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": 1.0 - float(np.sum(residual**2)) / total if total > 0 else None,
    }


def check_predictions(
    task: str, y_true, y_pred, num_classes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions as float64 arrays of matching length, or an EvaluateError."""
    if task not in (BINARY, MULTICLASS, REGRESSION):
        raise EvaluateError(f"unknown task '{task}'; use {BINARY}, {MULTICLASS} or {REGRESSION}")
    y = np.asarray(y_true, dtype=np.float64).ravel()
    p = np.asarray(y_pred, dtype=np.float64)
    if task != MULTICLASS:
        p = p.ravel()
    elif p.ndim != 2:
        p = p.reshape(len(p), -1) if len(p) else p.reshape(0, 0)
    if len(p) != len(y):
        raise EvaluateError(f"{len(y)} labels but {len(p)} predictions; they must be the same rows")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(p))):
        raise EvaluateError("labels or predictions contain NaN or infinity")
    if task == BINARY and not np.all((y == 0) | (y == 1)):
        raise EvaluateError("binary_classification labels must be 0 or 1")
    if task == MULTICLASS and len(y):
        k = p.shape[1] if num_classes is None else num_classes
        if p.shape[1] != k or y.min() < 0 or y.max() >= k or not np.all(y == np.round(y)):
            raise EvaluateError(f"multiclass labels must be ids 0..{k - 1} and predictions [n, {k}]")
    return y, p


def evaluate_predictions(task: str, y_true, y_pred, *, num_classes: int | None = None) -> dict[str, float | None]:
    """Every metric of ``task`` (see :data:`METRICS`); None where undefined on these rows."""
    y, p = check_predictions(task, y_true, y_pred, num_classes)
    if len(y) == 0:
        return {name: None for name in task_metrics(task)}
    compute = {BINARY: _binary, MULTICLASS: _multiclass, REGRESSION: _regression}[task]
    return compute(y, p)


def undefined_metrics(task: str, y_true, y_pred, *, num_classes: int | None = None) -> dict[str, str]:
    """Why each ``None`` in :func:`evaluate_predictions` is None: {metric: reason}."""
    y, p = check_predictions(task, y_true, y_pred, num_classes)
    metrics = evaluate_predictions(task, y, p)
    reasons = {}
    for name, value in metrics.items():
        if value is not None:
            continue
        if len(y) == 0:
            reasons[name] = "no rows to evaluate"
        elif name == "auc":
            reasons[name] = f"only one class ({int(y[0])}) present in the labels"
        elif name in ("recall", "f1"):
            reasons[name] = "no positive labels, so recall is undefined"
        elif name == "r2":
            reasons[name] = "the target is constant, so R2 is undefined"
    return reasons


def slice_metrics(task: str, y_true, y_pred, groups, min_rows: int, *, num_classes: int | None = None) -> dict:
    """Per group value (keys ``str(value)``, sorted): rows, too_small (rows < min_rows) and every metric."""
    y, p = check_predictions(task, y_true, y_pred, num_classes)
    keys = np.asarray(groups).astype(str).ravel()
    if len(keys) != len(y):
        raise EvaluateError(f"{len(keys)} group values but {len(y)} rows; give one group value per row")
    result = {}
    for key in np.unique(keys):
        rows = keys == key
        metrics = evaluate_predictions(task, y[rows], p[rows])  # classes already checked on all rows
        result[str(key)] = {"rows": int(rows.sum()), "too_small": bool(rows.sum() < min_rows), **metrics}
    return result
