"""Network architectures (linear, MLP) and task losses as pure JAX functions over a params dict."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from loopc.runtime.train.errors import TrainError

TASKS = ("binary_classification", "multiclass_classification", "regression")
ACTIVATIONS = {"relu": jax.nn.relu, "gelu": jax.nn.gelu, "tanh": jnp.tanh, "silu": jax.nn.silu}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def output_width(task: str, num_classes: int | None) -> int:
    """Units in the last layer: one logit (binary), one per class (multiclass), one value (regression)."""
    if task not in TASKS:
        raise TrainError(f"unknown task '{task}'; use one of {', '.join(TASKS)}")
    if task != "multiclass_classification":
        return 1
    if num_classes is None or num_classes < 2:
        raise TrainError(f"multiclass_classification needs num_classes >= 2, got {num_classes}")
    return int(num_classes)


def layer_widths(architecture: dict, n_features: int, n_outputs: int) -> list[int]:
    """Input, hidden and output widths of the network the architecture dict describes."""
    kind = architecture.get("kind")
    if kind == "linear":
        return [n_features, n_outputs]
    if kind == "mlp":
        activation = architecture.get("activation", "relu")
        if activation not in ACTIVATIONS:
            raise TrainError(f"unknown activation '{activation}'; use one of {', '.join(ACTIVATIONS)}")
        return [n_features, *[int(w) for w in architecture.get("hidden", [64, 64])], n_outputs]
    raise TrainError(f"unknown architecture kind '{kind}'; use 'linear' or 'mlp'")


def init_params(architecture: dict, n_features: int, n_outputs: int, key: jax.Array) -> dict:
    """Float32 params ``{"layer_0": {"w", "b"}, ...}``: Glorot-uniform weights, zero biases.

    A linear model starts at all zeros (the convex optimum is found from anywhere).
    """
    widths = layer_widths(architecture, n_features, n_outputs)
    init = jax.nn.initializers.glorot_uniform()
    params = {}
    for i, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
        key, sub = jax.random.split(key)
        weight = init(sub, (fan_in, fan_out), jnp.float32) if len(widths) > 2 else jnp.zeros((fan_in, fan_out))
        params[f"layer_{i}"] = {"w": weight, "b": jnp.zeros((fan_out,), jnp.float32)}
    return params


def apply_net(
    params: dict, architecture: dict, x: jax.Array, *, dtype=jnp.float32, dropout_key: jax.Array | None = None
) -> jax.Array:
    """Raw outputs [n, k] in float32; weights and inputs are cast to ``dtype`` for the matmuls.

    Dropout is applied to hidden activations only when ``dropout_key`` is given (training).
    """
    n_layers = sum(1 for name in params if name.startswith("layer_"))
    activation = ACTIVATIONS[architecture.get("activation", "relu")]
    rate = float(architecture.get("dropout", 0.0) or 0.0)
    h = x.astype(dtype)
    for i in range(n_layers):
        layer = params[f"layer_{i}"]
        h = h @ layer["w"].astype(dtype) + layer["b"].astype(dtype)
        if i < n_layers - 1:
            h = activation(h)
            if dropout_key is not None and rate > 0:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, i), 1.0 - rate, h.shape)
                h = jnp.where(keep, h / (1.0 - rate), 0).astype(dtype)
    return h.astype(jnp.float32)


def row_losses(task: str, outputs: jax.Array, y: jax.Array) -> jax.Array:
    """Per-row loss [n]: BCE with logits, softmax cross-entropy, or squared error."""
    if task == "binary_classification":
        return optax.sigmoid_binary_cross_entropy(outputs[:, 0], y)
    if task == "multiclass_classification":
        return optax.softmax_cross_entropy_with_integer_labels(outputs, y)
    return jnp.square(outputs[:, 0] - y)


def outputs_to_predictions(task: str, outputs: jax.Array, params: dict) -> jax.Array:
    """Predictions from raw outputs: P(y=1) [n], class probabilities [n, k], or values [n]."""
    if task == "binary_classification":
        return jax.nn.sigmoid(outputs[:, 0])
    if task == "multiclass_classification":
        return jax.nn.softmax(outputs, axis=-1)
    scale = params.get("target", {"shift": 0.0, "scale": 1.0})
    return outputs[:, 0] * scale["scale"] + scale["shift"]
