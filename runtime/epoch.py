"""Compiled training epochs: one jitted ``lax.scan`` over batches, data resident on the device.

The ragged last batch is padded and masked (padded rows get weight 0), so every row counts
in every epoch and batch shapes never change. With several local devices the batch dimension
is sharded over a 1-D mesh named ``data`` (data parallel; XLA inserts the gradient all-reduce).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .nets import apply_net, row_losses


@dataclass(frozen=True)
class EpochPlan:
    """Static shape of an epoch: rows, padded batch size and number of batches."""

    rows: int
    batch: int
    batches: int


def plan_epoch(rows: int, batch_size: int, devices: int) -> EpochPlan:
    """Batch size capped at the row count and rounded up to a multiple of the device count."""
    batch = max(1, min(int(batch_size), rows))
    batch = -(-batch // devices) * devices
    return EpochPlan(rows=rows, batch=batch, batches=-(-rows // batch))


def data_mesh() -> Mesh | None:
    """A 1-D mesh ``data`` over the local devices, or None on a single device."""
    devices = jax.local_devices()
    return Mesh(np.array(devices), ("data",)) if len(devices) > 1 else None


def put_replicated(array: np.ndarray, mesh: Mesh | None) -> jax.Array:
    """Copy ``array`` to the device (to every device of ``mesh``)."""
    if mesh is None:
        return jax.device_put(array)
    return jax.device_put(array, NamedSharding(mesh, PartitionSpec()))


def _batch_loss(params, x, y, w, count, key, *, task, architecture, dtype):
    """Weighted mean loss of one batch; padded rows have w == 0."""
    outputs = apply_net(params, architecture, x, dtype=dtype, dropout_key=key)
    return jnp.sum(w * row_losses(task, outputs, y)) / jnp.maximum(count, 1.0)


def make_epoch(task: str, architecture: dict, dtype, tx: optax.GradientTransformation, plan: EpochPlan, mesh):
    """A jitted ``epoch(params, opt_state, x, y, w, key) -> (params, opt_state, mean loss)``.

    The epoch's rows are gathered once in shuffled order (one device-side gather, a second copy
    of the training data), then ``lax.scan`` walks the contiguous batches.
    """
    dropout = float(architecture.get("dropout", 0.0) or 0.0) > 0
    grad_fn = jax.value_and_grad(partial(_batch_loss, task=task, architecture=architecture, dtype=dtype))
    split = NamedSharding(mesh, PartitionSpec(None, "data")) if mesh is not None else None

    def epoch(params, opt_state, x, y, w, key):
        perm_key, dropout_key = jax.random.split(key)

        def step(carry, batch):
            params, opt_state, total = carry
            xb, yb, wb, valid, i = batch
            count = jnp.sum(valid)
            step_key = jax.random.fold_in(dropout_key, i) if dropout else None
            loss, grads = grad_fn(params, xb, yb, wb * valid, count, step_key)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, total + loss * count), None

        shape = (plan.batches, plan.batch)
        order = jnp.zeros(shape[0] * shape[1], jnp.int32).at[: plan.rows].set(
            jax.random.permutation(perm_key, plan.rows))
        valid = (jnp.arange(shape[0] * shape[1]) < plan.rows).astype(jnp.float32).reshape(shape)
        xs, ys, ws = x[order].reshape(*shape, x.shape[1]), y[order].reshape(shape), w[order].reshape(shape)
        if split is not None:
            xs, ys, ws, valid = (jax.lax.with_sharding_constraint(a, split) for a in (xs, ys, ws, valid))
        carry = (params, opt_state, jnp.float32(0.0))
        (params, opt_state, total), _ = jax.lax.scan(step, carry, (xs, ys, ws, valid, jnp.arange(shape[0])))
        return params, opt_state, total / plan.rows

    return jax.jit(epoch, donate_argnums=(0, 1))


def make_evaluate(task: str, architecture: dict, dtype, chunk: int):
    """A jitted ``evaluate(params, x, y, w) -> weighted mean loss`` over ``chunk``-row pieces.

    Inputs must be padded to a multiple of ``chunk`` rows with weight 0 on the padding.
    """

    def piece(params, batch):
        x, y, w = batch
        outputs = apply_net(params, architecture, x, dtype=dtype)
        return jnp.sum(w * row_losses(task, outputs, y)), jnp.sum(w > 0)

    def evaluate(params, x, y, w):
        pieces = (x.reshape(-1, chunk, x.shape[1]), y.reshape(-1, chunk), w.reshape(-1, chunk))
        totals, counts = jax.lax.map(partial(piece, params), pieces)
        return jnp.sum(totals) / jnp.maximum(jnp.sum(counts), 1)

    return jax.jit(evaluate)
