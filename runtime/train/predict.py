"""Batched, jitted predictions from trained params (probabilities or values)."""

from __future__ import annotations

from functools import lru_cache

import jax
import numpy as np

from loopc.runtime.train.nets import (
    TrainError,
    apply_net,
    layer_widths,
    outputs_to_predictions,
)

PREDICT_CHUNK = 65536


def _hashable(architecture: dict) -> tuple:
    """A cache key for an architecture dict (lists become tuples)."""
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in architecture.items()))


@lru_cache(maxsize=32)
def _predict_fn(arch_key: tuple, task: str):
    """One jitted forward pass per (architecture, task); shapes are fixed by the chunk size."""
    architecture = {k: list(v) if isinstance(v, tuple) else v for k, v in arch_key}
    return jax.jit(lambda params, x: outputs_to_predictions(task, apply_net(params, architecture, x), params))


def _n_layers(params: dict) -> int:
    return sum(1 for name in params if name.startswith("layer_"))


def _check(params: dict, architecture: dict, x: np.ndarray) -> np.ndarray:
    """Features as float32 [n, f] matching the params' input width."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise TrainError(f"predict needs a 2-D feature matrix, got shape {x.shape}")
    width = params["layer_0"]["w"].shape[0]
    if x.shape[1] != width:
        raise TrainError(f"the model was trained on {width} features, these rows have {x.shape[1]}")
    n_layers = _n_layers(params)
    if len(layer_widths(architecture, width, 1)) - 1 != n_layers:
        raise TrainError(f"params have {n_layers} layers, architecture {architecture} expects another depth")
    return x


class Predictor:
    """Predictions of rows added block by block, bit for bit those of one :func:`predict` call over all
    of them: rows go through ``PREDICT_CHUNK`` at a time; fewer rows in all go through in one piece of
    their own size, else the last piece is padded to a full chunk (so at most two shapes compile)."""

    def __init__(self, params: dict, architecture: dict, task: str):
        self.params, self.architecture, self.task = params, architecture, task
        self.forward = _predict_fn(_hashable(architecture), task)
        self.device_params = jax.device_put(params)
        self.chunk = PREDICT_CHUNK
        self.pending: list[np.ndarray] = []
        self.pending_rows = 0
        self.pieces: list[np.ndarray] = []

    def add(self, x: np.ndarray) -> None:
        """Predict the full chunks that rows ``x`` (float32 [n, f]) complete; keep the rest for later."""
        x, start = _check(self.params, self.architecture, x), 0
        if self.pending_rows:
            start = min(self.chunk - self.pending_rows, len(x))
            self._hold(x[:start])
            if self.pending_rows < self.chunk:
                return
            self.pieces.append(self._run(np.concatenate(self.pending), self.chunk))
            self.pending, self.pending_rows = [], 0
        while len(x) - start >= self.chunk:
            self.pieces.append(self._run(x[start:start + self.chunk], self.chunk))
            start += self.chunk
        self._hold(x[start:])

    def result(self) -> np.ndarray:
        """Binary: P(y=1) [n]; multiclass: probabilities [n, k]; regression: values [n] (float32)."""
        if self.pending_rows:
            rest = np.concatenate(self.pending)
            self.pieces.append(self._run(rest, self.chunk if self.pieces else len(rest)))
            self.pending, self.pending_rows = [], 0
        if not self.pieces:
            k = self.params[f"layer_{_n_layers(self.params) - 1}"]["b"].shape[0]
            return np.zeros((0, k) if self.task == "multiclass_classification" else (0,), np.float32)
        return np.concatenate(self.pieces).astype(np.float32)

    def _hold(self, x: np.ndarray) -> None:
        if len(x):
            self.pending.append(x)
            self.pending_rows += len(x)

    def _run(self, block: np.ndarray, size: int) -> np.ndarray:
        """One forward pass over ``block`` padded with zero rows to ``size`` rows."""
        padded = block if len(block) == size else np.concatenate(
            [block, np.zeros((size - len(block), block.shape[1]), np.float32)])
        return np.asarray(self.forward(self.device_params, padded))[:len(block)]


def predict(params: dict, architecture: dict, task: str, x: np.ndarray) -> np.ndarray:
    """Binary: P(y=1) [n]; multiclass: probabilities [n, k]; regression: values [n] (float32).

    Rows go through in fixed chunks of ``PREDICT_CHUNK`` (the last one padded), so memory stays
    bounded and the function compiles once per architecture for any larger input; fewer rows go through
    in one piece of their own size, a shape each (:class:`Predictor`).
    """
    predictor = Predictor(params, architecture, task)
    predictor.add(x)
    return predictor.result()
