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

from loopc.runtime.train.nets import apply_net, row_losses


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


def _batch_loss(params, x, y, weights, count, key, *, task, architecture, dtype):
    """Weighted mean loss of one batch (padded rows weigh 0); plain mean when ``weights`` is None."""
    losses = row_losses(task, apply_net(params, architecture, x, dtype=dtype, dropout_key=key), y)
    if weights is None:
        return jnp.mean(losses)
    return jnp.sum(weights * losses) / jnp.maximum(count, 1.0)


def _batch_order(key, plan: EpochPlan):
    """Shuffled row ids [batches, batch] (padding points at row 0), row mask and real rows per batch."""
    padded = plan.batch * plan.batches
    order = jnp.zeros(padded, jnp.int32).at[: plan.rows].set(jax.random.permutation(key, plan.rows))
    mask = (jnp.arange(padded) < plan.rows).astype(jnp.float32).reshape(plan.batches, plan.batch)
    counts = jnp.minimum(plan.rows - jnp.arange(plan.batches) * plan.batch, plan.batch).astype(jnp.float32)
    return order.reshape(plan.batches, plan.batch), mask, counts


def _scan_batches(task, architecture, dtype, tx, plan: EpochPlan, mesh, weighted: bool):
    """``run(params, opt_state, total, x, y, w, order, mask, counts, ids, dropout_key)``: scan the batches.

    Each step gathers its batch from ``x`` by the row ids in ``order``; row weights are read only
    when ``weighted`` and the row mask only when the last batch is ragged, so the common case
    runs exactly the kernels a hand-written loop would.
    """
    dropout = float(architecture.get("dropout", 0.0) or 0.0) > 0
    grad_fn = jax.value_and_grad(partial(_batch_loss, task=task, architecture=architecture, dtype=dtype))
    shard = NamedSharding(mesh, PartitionSpec("data")) if mesh is not None else None
    masked = weighted or plan.rows % plan.batch != 0

    def run(params, opt_state, total, x, y, w, order, mask, counts, ids, dropout_key):
        def step(carry, batch):
            params, opt_state, total = carry
            idx, mask, count, i = batch
            if shard is not None:
                idx = jax.lax.with_sharding_constraint(idx, shard)
                mask = jax.lax.with_sharding_constraint(mask, shard)
            weights = (mask * w[idx] if weighted else mask) if masked else None
            step_key = jax.random.fold_in(dropout_key, i) if dropout else None
            loss, grads = grad_fn(params, x[idx], y[idx], weights, count, step_key)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state, total + loss * count), None

        return jax.lax.scan(step, (params, opt_state, total), (order, mask, counts, ids))[0]

    return run


def _epoch_order(key, index, plan: EpochPlan):
    """The epoch's batch order, mask, counts and dropout key, all from ``fold_in(key, index)``."""
    perm_key, dropout_key = jax.random.split(jax.random.fold_in(key, index))
    return (*_batch_order(perm_key, plan), dropout_key)


def make_epoch(task: str, architecture: dict, dtype, tx, plan: EpochPlan, mesh, weighted: bool):
    """A jitted ``epoch(params, opt_state, x, y, w, key, index) -> (params, opt_state, mean loss)``.

    The data is resident on the device and the whole epoch is one compiled call; its randomness
    is ``fold_in(key, index)``, derived on the device: no host work per epoch.
    """
    run = _scan_batches(task, architecture, dtype, tx, plan, mesh, weighted)

    def epoch(params, opt_state, x, y, w, key, index):
        order, mask, counts, dropout_key = _epoch_order(key, index, plan)
        ids = jnp.arange(plan.batches)
        params, opt_state, total = run(params, opt_state, jnp.float32(0.0), x, y, w, order, mask, counts, ids,
                                       dropout_key)
        return params, opt_state, total / plan.rows

    return jax.jit(epoch, donate_argnums=(0, 1))


def make_streamed_epoch(task: str, architecture: dict, dtype, tx, plan: EpochPlan, mesh, weighted: bool,
                        chunk_batches: int):
    """Like :func:`make_epoch` for data kept on the host: ``x, y, w`` are numpy arrays.

    The same shuffled order is computed on the device; then ``chunk_batches`` batches at a time
    are gathered on the host, copied over and scanned. Same batches, same updates, same result.
    """
    run = jax.jit(_scan_batches(task, architecture, dtype, tx, plan, mesh, weighted), donate_argnums=(0, 1))
    order_fn = jax.jit(partial(_epoch_order, plan=plan))

    def epoch(params, opt_state, x, y, w, key, index):
        order, mask, counts, dropout_key = order_fn(key, index)
        order, mask, counts = np.asarray(order), np.asarray(mask), np.asarray(counts)
        total = jnp.float32(0.0)
        for start in range(0, plan.batches, chunk_batches):
            stop = min(start + chunk_batches, plan.batches)
            rows = order[start:stop].reshape(-1)
            local = np.arange(len(rows), dtype=np.int32).reshape(stop - start, plan.batch)
            chunk = [put_replicated(a[rows], mesh) for a in (x, y, w)]
            params, opt_state, total = run(params, opt_state, total, *chunk, local, mask[start:stop],
                                           counts[start:stop], np.arange(start, stop, dtype=np.int32), dropout_key)
        return params, opt_state, total / plan.rows

    return epoch


def make_epoch_steps(task: str, architecture: dict, dtype, tx, plan: EpochPlan, mesh, weighted: bool):
    """``(order_fn, run)`` for an epoch run in pieces: its order from ``(key, index)``, a jitted scan.

    Scanning batches ``[a, b)`` then ``[b, c)`` gives the same bits as one call over ``[a, c)``,
    so training may stop between pieces (a checkpoint) and resume there.
    """
    run = jax.jit(_scan_batches(task, architecture, dtype, tx, plan, mesh, weighted), donate_argnums=(0, 1))
    return make_order(plan), run


def make_order(plan: EpochPlan):
    """A jitted ``order(key, index) -> (row ids [batches, batch], mask, counts, dropout key)``."""
    return jax.jit(partial(_epoch_order, plan=plan))


@dataclass(frozen=True)
class Pieces:
    """The jitted scan, with executables compiled ahead of time for the piece lengths an epoch uses."""

    run: object
    compiled: dict

    def __call__(self, *args):
        return self.compiled.get(len(args[-2]), self.run)(*args)


def compile_pieces(run, order_fn, state: tuple, data: tuple, plan: EpochPlan, per_call: int, host: bool,
                   mesh) -> Pieces:
    """Compile ``run`` for pieces of ``per_call`` batches and the epoch's last, shorter piece.

    Pieces start at multiples of ``per_call`` (training stops only between them), so these are
    the only lengths an epoch, resumed or not, runs.
    """
    key = jax.eval_shape(order_fn, jax.random.PRNGKey(0), np.int32(0))[3]
    compiled = {}
    for length in sorted({min(per_call, plan.batches), plan.batches % per_call} - {0}):
        rows = length * plan.batch
        if host:
            sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec())
            data = tuple(jax.ShapeDtypeStruct((rows, *a.shape[1:]), a.dtype, sharding=sharding) for a in data)
        pieces = (np.zeros((length, plan.batch), np.int32), np.zeros((length, plan.batch), np.float32),
                  np.zeros(length, np.float32), np.zeros(length, np.int32), key)
        compiled[length] = run.lower(*state, *data, *pieces).compile()
    return Pieces(run, compiled)


def run_batches(run, state: tuple, data: tuple, order: tuple, start: int, stop: int, *, host: bool, mesh):
    """Scan batches ``[start, stop)``; ``order`` is numpy ``(order, mask, counts, dropout_key)``.

    Host data (numpy, streamed) is gathered for those batches and copied over; device data is indexed.
    """
    rows, mask, counts, dropout_key = order
    idx = rows[start:stop]
    if host:
        flat = idx.reshape(-1)
        data = tuple(put_replicated(a[flat], mesh) for a in data)
        idx = np.arange(len(flat), dtype=np.int32).reshape(idx.shape)
    return run(*state, *data, idx, mask[start:stop], counts[start:stop], np.arange(start, stop, dtype=np.int32),
               dropout_key)


def make_global_step(task: str, architecture: dict, dtype, tx, mesh: Mesh):
    """A jitted step over a batch spread across processes (a global mesh); XLA all-reduces the gradient.

    ``step(params, opt_state, total, x, y, w, count, stop, key, i)``: ``w`` is zero on padding, ``count``
    the batch's real rows (all processes together); returns the new state and the maximum of ``stop``
    (a process asking to stop), replicated so every process takes the same decision.
    """
    dropout = float(architecture.get("dropout", 0.0) or 0.0) > 0
    grad_fn = jax.value_and_grad(partial(_batch_loss, task=task, architecture=architecture, dtype=dtype))

    def step(params, opt_state, total, x, y, w, count, stop, key, i):
        step_key = jax.random.fold_in(key, i) if dropout else None
        loss, grads = grad_fn(params, x, y, w, count, step_key)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, total + loss * count, jnp.max(stop)

    return jax.jit(step, out_shardings=NamedSharding(mesh, PartitionSpec()), donate_argnums=(0, 1))


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
