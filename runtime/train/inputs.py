"""Training inputs checked and shaped on the host: labels, features, row weights, target scaling.

Feature matrices arrive as float32 (built by steps/matrices: in memory, or memory-mapped .npy files in the
train step's scratch folder or, for a sweep's trials, in their shared copy: steps/trial_matrices) and are checked
chunk by chunk, never copied: the trainer hands them to the device as they are.
"""

from __future__ import annotations

import numpy as np

from loopc.runtime.train.nets import TrainError, output_width


def _labels(task: str, y: np.ndarray, num_classes: int | None, where: str) -> np.ndarray:
    """Labels as float32 (binary, regression) or int32 class ids (multiclass), checked."""
    y = np.asarray(y).reshape(-1)
    if task == "multiclass_classification":
        ids = y.astype(np.int64)
        if not np.array_equal(ids, y) or (ids.size and (ids.min() < 0 or ids.max() >= num_classes)):
            raise TrainError(f"{where} labels must be class ids 0..{num_classes - 1}")
        return ids.astype(np.int32)
    y = y.astype(np.float32)
    if not np.all(np.isfinite(y)):
        raise TrainError(f"{where} labels contain NaN or infinity; drop or impute those rows")
    if task == "binary_classification" and not np.all((y == 0) | (y == 1)):
        raise TrainError(f"{where} labels of a binary_classification model must be 0 or 1")
    return y


CHECK_ROWS = 65536


def _features(x: np.ndarray, rows: int, where: str) -> np.ndarray:
    """A finite float32 [rows, n_features] matrix (the same array when it is float32 already), or a TrainError."""
    x = x if isinstance(x, np.ndarray) and x.dtype == np.float32 else np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != rows:
        raise TrainError(f"{where} features must be a 2-D matrix with one row per label, got shape {x.shape}")
    for start in range(0, rows, CHECK_ROWS):
        if not np.isfinite(x[start:start + CHECK_ROWS]).all():
            raise TrainError(f"{where} features contain NaN or infinity; add an impute transform")
    return x


def _row_weights(task: str, y: np.ndarray, num_classes: int | None, class_weight, sample_weight) -> np.ndarray:
    """Per-row training weights: sample_weight times balanced class weights n / (k * n_class)."""
    weights = np.ones(len(y), np.float32) if sample_weight is None else np.asarray(sample_weight, np.float32)
    if weights.shape != (len(y),) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise TrainError("sample_weight must be one finite, non-negative weight per training row")
    if class_weight is None:
        return weights
    if class_weight != "balanced" or task == "regression":
        raise TrainError(f"class_weight '{class_weight}' is not supported for {task}; use 'balanced' or none")
    return weights * _balanced_weights(task, y, num_classes)[y.astype(np.int64)]


def _balanced_weights(task: str, y: np.ndarray, num_classes: int | None) -> np.ndarray:
    """Weight per class id: n / (k * n_c), 1.0 for classes absent from ``y``."""
    k = 2 if task == "binary_classification" else int(num_classes)
    counts = np.bincount(y.astype(np.int64), minlength=k).astype(np.float64)
    return np.where(counts > 0, len(y) / (k * np.maximum(counts, 1)), 1.0).astype(np.float32)


def _target_scaling(task: str, y: np.ndarray) -> tuple[float, float]:
    """Regression trains on standardized targets: (shift, scale); identity for classification."""
    if task != "regression" or len(y) == 0:
        return 0.0, 1.0
    scale = float(np.std(y))
    return float(np.mean(y)), scale if scale > 0 else 1.0


def pad_rows(x: np.ndarray, y: np.ndarray, w: np.ndarray, multiple: int, dtype=None):
    """Pad to a multiple of ``multiple`` rows; padded rows get weight 0. ``x`` comes back in ``dtype``
    (default its own), converted while it is copied: one host copy, whatever the dtype."""
    extra = (-len(y)) % multiple

    def pad(a: np.ndarray, kind) -> np.ndarray:
        out = np.zeros((len(a) + extra, *a.shape[1:]), kind)
        out[:len(a)] = a
        return out

    return pad(x, dtype or x.dtype), pad(y, y.dtype), pad(w, w.dtype)


class CastRows:
    """A feature matrix (a memory-mapped float32 .npy) read in ``dtype`` one row selection at a time:
    streamed training gathers its batches from it without a whole converted host copy."""

    def __init__(self, x: np.ndarray, dtype):
        self.x, self.dtype, self.shape, self.ndim = x, np.dtype(dtype), x.shape, x.ndim

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows) -> np.ndarray:
        return np.asarray(self.x[rows]).astype(self.dtype)


def host_rows(x: np.ndarray, dtype) -> np.ndarray | CastRows:
    """``x`` itself when it is in ``dtype`` already, else a :class:`CastRows` of it (never a whole copy)."""
    return x if x.dtype == np.dtype(dtype) else CastRows(x, dtype)


def prepare_training_data(x_train, y_train, x_valid, y_valid, task, num_classes, training, sample_weight,
                          rows: tuple[int, int] | None = None):
    """Checked host arrays: (x, y, w) for train and valid, and the regression target scaling.

    With ``rows`` = ``(lo, hi)`` only those training feature rows are read (one process's shard: the
    returned x has ``hi - lo`` rows); ``x_train`` holds every row or only those. Labels and weights stay
    whole, for the global statistics.
    """
    output_width(task, num_classes)
    y_tr = _labels(task, y_train, num_classes, "training")
    y_va = _labels(task, y_valid, num_classes, "validation")
    lo, hi = (0, len(y_tr)) if rows is None else rows
    x_tr = _features(x_train if rows is None or len(x_train) == hi - lo else x_train[lo:hi], hi - lo, "training")
    x_va = _features(x_valid, len(y_va), "validation")
    if len(y_tr) == 0:
        raise TrainError("the training split has no rows; check the dataset and its split fractions")
    if x_va.shape[0] and x_va.shape[1] != x_tr.shape[1]:
        raise TrainError(f"validation has {x_va.shape[1]} features, training has {x_tr.shape[1]}")
    class_weight = training.get("class_weight")
    w_tr = _row_weights(task, y_tr, num_classes, class_weight, sample_weight)
    w_va = np.ones(len(y_va), np.float32)
    if class_weight is not None:
        w_va = _balanced_weights(task, y_tr, num_classes)[y_va.astype(np.int64)]
    shift, scale = _target_scaling(task, y_tr)
    if task == "regression":
        y_tr, y_va = (y_tr - shift) / scale, (y_va - shift) / scale
    return (x_tr, y_tr, w_tr), (x_va, y_va, w_va), (shift, scale)
