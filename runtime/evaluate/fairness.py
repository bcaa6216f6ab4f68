"""Group fairness gaps of a binary classifier: demographic parity and equal opportunity differences."""

from __future__ import annotations

import numpy as np

from loopc.runtime.evaluate.evaluation import BINARY, EvaluateError, check_predictions


def _gap(rates: list[float]) -> float:
    """max - min of the rates (0.0 for one group or none)."""
    return float(max(rates) - min(rates)) if rates else 0.0


def fairness_gaps(y_true, y_pred_proba, groups, threshold: float = 0.5) -> dict:
    """Gaps in positive rate and true-positive rate across group values at ``threshold``.

    Returns ``demographic_parity_difference`` (max - min positive rate over groups),
    ``equal_opportunity_difference`` (max - min true-positive rate over groups that have
    positive labels; None with ``equal_opportunity_note`` when no group has any) and ``groups``:
    {str(value): {rows, positive_rate, true_positive_rate (None without positives)}}.
    """
    y, p = check_predictions(BINARY, y_true, y_pred_proba)
    keys = np.asarray(groups).astype(str).ravel()
    if len(keys) != len(y):
        raise EvaluateError(f"{len(keys)} group values but {len(y)} rows; give one group value per row")
    predicted = p >= threshold
    per_group = {}
    for key in np.unique(keys):
        rows = keys == key
        positives = rows & (y == 1)
        tpr = float(predicted[positives].mean()) if positives.any() else None
        per_group[str(key)] = {"rows": int(rows.sum()), "positive_rate": float(predicted[rows].mean()),
                               "true_positive_rate": tpr}
    tprs = [g["true_positive_rate"] for g in per_group.values() if g["true_positive_rate"] is not None]
    result = {
        "demographic_parity_difference": _gap([g["positive_rate"] for g in per_group.values()]),
        "equal_opportunity_difference": _gap(tprs) if tprs else None,
        "threshold": float(threshold),
        "groups": per_group,
    }
    if not tprs:
        result["equal_opportunity_note"] = "no group has positive labels, so true-positive rates are undefined"
    return result
