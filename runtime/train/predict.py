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


def predict(params: dict, architecture: dict, task: str, x: np.ndarray) -> np.ndarray:
    """Binary: P(y=1) [n]; multiclass: probabilities [n, k]; regression: values [n] (float32).

    Rows go through in fixed chunks of ``PREDICT_CHUNK`` (the last one padded), so memory stays
    bounded and the function compiles once per architecture.
    """
    x = _check(params, architecture, x)
    forward = _predict_fn(_hashable(architecture), task)
    chunk = min(PREDICT_CHUNK, max(len(x), 1))
    device_params = jax.device_put(params)
    pieces = []
    for start in range(0, len(x), chunk):
        block = x[start:start + chunk]
        padded = np.concatenate([block, np.zeros((chunk - len(block), x.shape[1]), np.float32)])
        pieces.append(np.asarray(forward(device_params, padded))[: len(block)])
    if not pieces:
        k = params[f"layer_{_n_layers(params) - 1}"]["b"].shape[0]
        return np.zeros((0, k) if task == "multiclass_classification" else (0,), np.float32)
    return np.concatenate(pieces).astype(np.float32)
