"""Train a model with JAX + optax: device-resident data, whole epochs compiled, early stopping, resume.

With a checkpoint folder an epoch runs in pieces of ``steps_per_call`` batches, so SIGTERM/SIGUSR1
stop it between pieces with a checkpoint at that step; across processes (``jax.process_count() > 1``)
each step's batch is assembled from every process's own rows and the gradient is all-reduced.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from loopc.runtime.train import checkpoint as ckpt
from loopc.runtime.train import distributed as dist
from loopc.runtime.train.checkpoint import load_params, save_params
from loopc.runtime.train.epoch import (
    EpochPlan,
    compile_pieces,
    data_mesh,
    make_epoch,
    make_epoch_steps,
    make_evaluate,
    make_global_step,
    make_order,
    make_streamed_epoch,
    plan_epoch,
    put_replicated,
    run_batches,
)
from loopc.runtime.train.inputs import host_rows, pad_rows, prepare_training_data
from loopc.runtime.train.nets import DTYPES, TrainError, init_params, output_width
from loopc.runtime.train.optim import build_optimizer
from loopc.runtime.train.predict import predict
from loopc.runtime.train.preempt import Preempted, StopSignals

__all__ = ["TrainError", "TrainResult", "compile_ahead", "train_model", "predict", "save_params", "load_params"]

EVAL_CHUNK = 16384
LOG = logging.getLogger("loopc.train")
STEPS_PER_CALL = 64


@dataclass(frozen=True)
class TrainResult:
    """What training produced. ``params`` are numpy arrays; ``history`` has one dict per epoch."""

    params: dict
    history: list[dict]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    rows_per_second: float
    compile_seconds: float = 0.0
    devices: int = 1
    streamed: bool = False
    resumed_at: tuple[int, int] | None = None  # (epochs done, step within the next) of the checkpoint resumed


@dataclass
class _Progress:
    """Mutable loop state: exactly what a checkpoint holds."""

    params: dict
    opt_state: object
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best_params: dict | None = None
    best_val: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    finished: bool = False
    stopped_early: bool = False
    step: int = 0  # batches of the current epoch already trained
    total: float = 0.0  # their summed loss (float32)


def _fingerprint(**parts) -> str:
    """A digest of everything a checkpoint must match before it may be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _save(directory: Path, progress: _Progress, fingerprint: str, rng: np.ndarray) -> Path:
    """Write the loop state; the optimizer state is stored as its flat list of leaves."""
    trees = {"params": progress.params}
    if progress.best_params is not None:
        trees["best_params"] = progress.best_params
    meta = {
        "fingerprint": fingerprint, "epoch": progress.epoch, "history": progress.history,
        "best_val": progress.best_val if math.isfinite(progress.best_val) else None,
        "best_epoch": progress.best_epoch, "bad_epochs": progress.bad_epochs,
        "finished": progress.finished, "stopped_early": progress.stopped_early,
        "step": progress.step, "total": float(progress.total),
    }
    leaves = {"opt_state": jax.tree_util.tree_leaves(progress.opt_state), "rng": [rng]}
    return ckpt.save_checkpoint(directory, dist.to_host(trees), dist.to_host(leaves), meta)


def _resume(directory: Path, fingerprint: str, progress: _Progress) -> _Progress:
    """Loop state from ``directory``'s checkpoint, or ``progress`` unchanged when there is none."""
    loaded = ckpt.load_checkpoint(directory)
    if loaded is None:
        return progress
    arrays, meta = loaded
    if meta.get("fingerprint") != fingerprint:
        raise TrainError(
            f"the checkpoint in {directory} was written for different data or settings; "
            "delete it (or use another checkpoint directory) to train from scratch"
        )
    treedef = jax.tree_util.tree_structure(progress.opt_state)
    best = ckpt.subtree(arrays, "best_params") if any(k.startswith("best_params/") for k in arrays) else None
    leaves = [jnp.asarray(leaf) for leaf in ckpt.leaf_list(arrays, "opt_state")]
    return _Progress(
        params=jax.tree_util.tree_map(jnp.asarray, ckpt.subtree(arrays, "params")),
        opt_state=jax.tree_util.tree_unflatten(treedef, leaves),
        epoch=meta["epoch"], history=meta["history"], best_params=best,
        best_val=math.inf if meta["best_val"] is None else meta["best_val"], best_epoch=meta["best_epoch"],
        bad_epochs=meta["bad_epochs"], finished=meta["finished"], stopped_early=meta["stopped_early"],
        step=int(meta.get("step", 0)), total=float(np.float32(meta.get("total", 0.0))),
    )


@dataclass(frozen=True)
class _Setup:
    """Everything the epoch loop needs that does not change between epochs."""

    epoch_fn: object
    eval_fn: object | None
    train_data: tuple
    valid_data: tuple | None
    loss_scale: float
    compile_seconds: float
    streamed: bool
    rows: int = 0
    mesh: object = None
    dtype: object = None
    mode: str = "whole"  # whole (one call per epoch) | pieces (steps_per_call batches a call) | global
    order_fn: object = None
    per_call: int = STEPS_PER_CALL
    shard: tuple = (0, 0, None)  # global mode: (lo, hi, row bounds of every process)


_COMPILED: OrderedDict[str, tuple] = OrderedDict()
_COMPILED_KEEP = 8


def _avals(tree) -> list:
    """Shapes and dtypes of a pytree's leaves, for the compile cache key."""
    return [(tuple(np.shape(leaf)), str(getattr(leaf, "dtype", None) or np.asarray(leaf).dtype)) for leaf in jax.tree_util.tree_leaves(tree)]


def _compile(task, architecture, dtype, tx, tx_key, plan: EpochPlan, mesh, progress, train_data, valid_data,
             weighted: bool):
    """Compile the epoch and validation functions ahead of time; returns them and the seconds spent.

    Executables are kept per (settings, shapes) in this process, so a resumed or repeated run
    with the same settings (``tx_key`` names the optimizer tx was built from) skips compiling.
    """
    started = time.perf_counter()
    cache_key = json.dumps([task, architecture, str(jnp.dtype(dtype)), tx_key, plan.__dict__, weighted,
                            None if mesh is None else mesh.size, _avals(progress.params),
                            _avals(train_data), _avals(valid_data)], sort_keys=True, default=str)
    if cache_key in _COMPILED:
        _COMPILED.move_to_end(cache_key)
        return (*_COMPILED[cache_key], time.perf_counter() - started)
    epoch_fn = None
    if train_data is not None:
        epoch_fn = make_epoch(task, architecture, dtype, tx, plan, mesh, weighted)
        epoch_fn = epoch_fn.lower(progress.params, progress.opt_state, *train_data, jax.random.PRNGKey(0),
                                  np.int32(0)).compile()
    eval_fn = None
    if valid_data is not None:
        eval_fn = make_evaluate(task, architecture, dtype, min(EVAL_CHUNK, len(valid_data[1])))
        eval_fn = eval_fn.lower(progress.params, *valid_data).compile()
    _COMPILED[cache_key] = (epoch_fn, eval_fn)
    while len(_COMPILED) > _COMPILED_KEEP:
        _COMPILED.popitem(last=False)
    return epoch_fn, eval_fn, time.perf_counter() - started


def _device_data(x, y, w, dtype, mesh, chunk: int | None = None) -> tuple:
    """Rows on the device(s), features already in the compute dtype; optionally padded to ``chunk``."""
    if chunk is not None:
        x, y, w = pad_rows(x, y, w, _pad_multiple(len(y), chunk), dtype)
    return tuple(put_replicated(a, mesh) for a in (x.astype(dtype, copy=False), y, w))


def _pad_multiple(rows: int, chunk: int) -> int:
    """What ``rows`` rows evaluated in chunks of ``chunk`` are padded to a multiple of."""
    return min(chunk, max(rows, 1))


def _padded(rows: int, chunk: int) -> int:
    """``rows`` padded as :func:`_device_data` pads them for chunks of ``chunk``."""
    multiple = _pad_multiple(rows, chunk)
    return -(-rows // multiple) * multiple


def _host_copy(tree):
    """Numpy copies that stay valid after the device buffers are donated to the next epoch."""
    return dist.to_host(tree)


def _improved(progress: _Progress, val_loss: float, min_delta: float) -> bool:
    """True when ``val_loss`` beats the best so far by more than ``min_delta``."""
    return val_loss < progress.best_val - min_delta


def _train_epoch(setup: _Setup, progress: _Progress, loop_key, control) -> tuple:
    """``(params, opt_state, mean train loss)`` of the epoch, in the setup's mode."""
    if setup.mode == "whole":
        return setup.epoch_fn(progress.params, progress.opt_state, *setup.train_data, loop_key,
                              np.int32(progress.epoch))
    order = tuple(np.asarray(a) for a in setup.order_fn(loop_key, np.int32(progress.epoch)))
    steps = _global_steps if setup.mode == "global" else _piece_steps
    total = steps(setup, progress, order, control)
    return progress.params, progress.opt_state, np.float32(total) / np.float32(setup.rows)


def _piece_steps(setup: _Setup, progress: _Progress, order: tuple, control) -> float:
    """Scan the epoch's remaining batches ``steps_per_call`` at a time; returns the summed loss."""
    state = (progress.params, progress.opt_state, jnp.float32(progress.total))
    batches = len(order[0])
    for start in range(progress.step, batches, setup.per_call):
        stop = min(start + setup.per_call, batches)
        state = run_batches(setup.epoch_fn, state, setup.train_data, order, start, stop, host=setup.streamed,
                            mesh=setup.mesh)
        progress.params, progress.opt_state = state[0], state[1]
        control.after_step(progress, stop, batches, lambda: float(state[2]), lambda: False)
    return float(state[2])


def _global_steps(setup: _Setup, progress: _Progress, order: tuple, control) -> float:
    """One step per global batch: this process's rows of it, padded to the epoch's capacity."""
    rows, mask, counts, dropout_key = order
    lo, hi, bounds = setup.shard
    mesh, (x, y, w) = setup.mesh, setup.train_data
    capacity = dist.batch_capacity(rows, mask, bounds, jax.local_device_count())
    total = dist.to_global(np.float32(progress.total), mesh)
    key = dist.to_global(dropout_key, mesh)
    for index in range(progress.step, len(rows)):
        xb, yb, wb = dist.local_batch(x, y, w, rows[index][mask[index] > 0], lo, hi, capacity)
        flag = np.full(jax.local_device_count(), 1.0 if control.requested() else 0.0, np.float32)
        progress.params, progress.opt_state, total, wanted = setup.epoch_fn(
            progress.params, progress.opt_state, total, dist.sharded(mesh, xb.astype(setup.dtype)),
            dist.sharded(mesh, yb), dist.sharded(mesh, wb), dist.to_global(np.float32(counts[index]), mesh),
            dist.sharded(mesh, flag), key, dist.to_global(np.int32(index), mesh))
        control.after_step(progress, index + 1, len(rows), lambda: float(dist.to_host(total)),
                           lambda: float(dist.to_host(wanted)) > 0)
    return float(dist.to_host(total))


def _run_epoch(setup: _Setup, progress: _Progress, loop_key, early: dict | None, control) -> None:
    """Train one epoch, evaluate, update history and early-stopping state in place."""
    started = time.perf_counter()
    params, opt_state, train_loss = _train_epoch(setup, progress, loop_key, control)
    progress.step, progress.total = 0, 0.0
    val_loss = setup.eval_fn(_eval_params(setup, params), *setup.valid_data) if setup.eval_fn is not None else None
    train_loss = float(train_loss) * setup.loss_scale
    val_loss = None if val_loss is None else float(val_loss) * setup.loss_scale
    seconds = time.perf_counter() - started
    progress.epoch += 1
    if not math.isfinite(train_loss) or (val_loss is not None and not math.isfinite(val_loss)):
        raise TrainError(
            f"training diverged in epoch {progress.epoch} (loss {train_loss}); "
            "lower optimizer.lr or set optimizer.clip_norm"
        )
    progress.params, progress.opt_state = params, opt_state
    progress.history.append({"epoch": progress.epoch, "train_loss": train_loss, "val_loss": val_loss,
                             "seconds": seconds})
    if early is None or val_loss is None:
        return
    if _improved(progress, val_loss, float(early.get("min_delta", 0.0))):
        progress.best_val, progress.best_epoch, progress.bad_epochs = val_loss, progress.epoch, 0
        progress.best_params = _host_copy(params)
    else:
        progress.bad_epochs += 1
        progress.stopped_early = progress.bad_epochs >= int(early.get("patience", 3))


def _eval_params(setup: _Setup, params):
    """Params the (process-local) evaluation takes: host copies when they span processes."""
    return dist.to_host(params) if setup.mode == "global" else params


def _final_params(progress: _Progress, early: dict | None, task: str, scaling) -> dict:
    """Best params under early stopping, else the last; regression adds its target scaling."""
    chosen = progress.best_params if early is not None and progress.best_params is not None else progress.params
    params = _host_copy(chosen)
    if task == "regression":
        params["target"] = {"shift": np.float32(scaling[0]), "scale": np.float32(scaling[1])}
    return params


def _best_epoch(progress: _Progress, early: dict | None) -> int:
    """The epoch whose params are kept (early stopping) or with the lowest val_loss."""
    if early is not None:
        return progress.best_epoch
    scored = [(h["val_loss"], h["epoch"]) for h in progress.history if h["val_loss"] is not None]
    return min(scored)[1] if scored else progress.epoch


def train_model(
    x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray, *,
    task: str, num_classes: int | None, architecture: dict, optimizer: dict, schedule: dict, training: dict,
    precision: str = "float32", checkpoint_dir: Path | None = None, sample_weight: np.ndarray | None = None,
    max_epochs_this_call: int | None = None, device_data_budget: int | None = None,
    steps_per_call: int = STEPS_PER_CALL, on_step=None,
) -> TrainResult:
    """Train with one compiled ``lax.scan`` per epoch over device-resident data; see docs/performance.md.

    Dicts are ``model_dump(mode="json")`` of the spec's Model sections. With ``checkpoint_dir`` the
    loop state is saved every ``training.checkpoint_every`` epochs and when the call ends, and a
    later call resumes from it (ending with the same params as an uninterrupted run); epochs then run
    ``steps_per_call`` batches a call, and SIGTERM/SIGUSR1 stop training after the call in progress
    with a checkpoint at that step (raising :class:`Preempted`). ``on_step(epoch, step)`` is called
    after each call. ``max_epochs_this_call`` stops after that many epochs.
    Training rows larger than ``device_data_budget`` bytes (default: 40% of the device's memory,
    unlimited on the CPU) stay on the host and are streamed to the device in chunks.
    With several JAX processes each reads only its row range of ``x_train`` and batches are global:
    same batches, schedule and shuffling as one process. Only process 0 writes checkpoints.
    With early stopping the best params are returned, otherwise the last epoch's.
    """
    if precision not in DTYPES:
        raise TrainError(f"unknown precision '{precision}'; use one of {', '.join(DTYPES)}")
    processes, rows = jax.process_count(), len(y_train)
    shard = dist.row_range(rows, jax.process_index(), processes) if processes > 1 else None
    train, valid, scaling = prepare_training_data(x_train, y_train, x_valid, y_valid, task, num_classes,
                                                  training, sample_weight, rows=shard)
    early = training.get("early_stopping")
    if early is not None and len(valid[1]) == 0:
        raise TrainError("early stopping needs validation rows, but the validation split is empty")
    mesh = dist.global_mesh() if processes > 1 else data_mesh()
    job, progress, loop_key = _start(rows, train[0].shape[1], mesh, processes, task=task, num_classes=num_classes,
                                     architecture=architecture, optimizer=optimizer, schedule=schedule,
                                     training=training, precision=precision, device_data_budget=device_data_budget)
    plan, epochs = job.plan, int(training.get("epochs", 10))
    fingerprint = _fingerprint(
        task=task, num_classes=num_classes, architecture=architecture, optimizer=optimizer, schedule=schedule,
        training={k: v for k, v in training.items() if k != "checkpoint_every"}, precision=precision,
        shapes=[(rows, train[0].shape[1]), valid[0].shape], batch=plan.batch,
    )
    fresh = progress
    if checkpoint_dir is not None:
        progress = _resume(Path(checkpoint_dir), fingerprint, progress)
    resumed_at = None if progress is fresh else (progress.epoch, progress.step)
    if processes > 1:
        setup = _global_setup(job, progress, train, valid, scaling, shard)
    else:
        setup = _setup(job, progress, train, valid, scaling, None if checkpoint_dir is None else steps_per_call)
    control = _Control(_saver(checkpoint_dir, fingerprint, loop_key, processes), on_step, processes > 1)
    with (StopSignals() if checkpoint_dir is not None else _NoSignals()) as signals:
        control.signals = signals
        ran = _loop(setup, progress, loop_key, early, epochs, training, control, max_epochs_this_call)
    return replace(_result(progress, early, task, scaling, setup, plan, ran, mesh), resumed_at=resumed_at)


def _start(rows: int, dim: int, mesh, processes: int, *, task: str, num_classes: int | None, architecture: dict,
           optimizer: dict, schedule: dict, training: dict, precision: str,
           device_data_budget: int | None) -> tuple[_Job, _Progress, object]:
    """What a run on ``rows`` training rows of ``dim`` features fixes before it sees them: the settings its
    compiled functions depend on, the fresh loop state (initial params) and the key that shuffles its epochs."""
    plan = plan_epoch(rows, int(training.get("batch_size", 256)), 1 if mesh is None or processes > 1 else mesh.size)
    steps = int(training.get("epochs", 10)) * plan.batches
    tx = build_optimizer(optimizer, schedule, steps)
    init_key, loop_key = jax.random.split(jax.random.PRNGKey(int(training.get("seed", 0))))
    params = init_params(architecture, dim, output_width(task, num_classes), init_key)
    job = _Job(task, architecture, DTYPES[precision], tx, json.dumps([optimizer, schedule, steps], sort_keys=True),
               plan, mesh, _device_budget(device_data_budget))
    return job, _Progress(params=params, opt_state=tx.init(params)), loop_key


def compile_ahead(rows: int, valid_rows: int, dim: int, *, task: str, num_classes: int | None, architecture: dict,
                  optimizer: dict, schedule: dict, training: dict, precision: str = "float32",
                  steps_per_call: int = STEPS_PER_CALL, device_data_budget: int | None = None) -> float:
    """Compile, before the data exists, what :func:`train_model` with a checkpoint folder compiles for data of
    these shapes (one process, rows resident on the device); its own compile then finds the executables in this
    process's cache. Returns the seconds spent compiling (0 where nothing is). Row weights are taken to be
    all ones unless ``training.class_weight`` is set: a wrong guess costs a second compile, never another model.
    """
    if precision not in DTYPES or jax.process_count() > 1:
        return 0.0
    mesh = data_mesh()
    job, progress, _ = _start(rows, dim, mesh, 1, task=task, num_classes=num_classes, architecture=architecture,
                              optimizer=optimizer, schedule=schedule, training=training, precision=precision,
                              device_data_budget=device_data_budget)
    if not _resident(job, dim):
        return 0.0
    sharding = None if mesh is None else NamedSharding(mesh, PartitionSpec())
    label = np.int32 if task == "multiclass_classification" else np.float32

    def shaped(n: int) -> tuple:  # (x, y, w) of n rows as _device_data places them
        return (jax.ShapeDtypeStruct((n, dim), job.dtype, sharding=sharding),
                jax.ShapeDtypeStruct((n,), label, sharding=sharding),
                jax.ShapeDtypeStruct((n,), np.float32, sharding=sharding))

    weighted = training.get("class_weight") is not None
    valid = shaped(_padded(valid_rows, EVAL_CHUNK)) if valid_rows else None
    started = time.perf_counter()  # compiling only, as train_model counts it: not the backend's start
    _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan, job.mesh, progress, None, valid,
             weighted)
    _pieces(job, progress, shaped(rows), weighted, steps_per_call, False)
    return time.perf_counter() - started


class _NoSignals:
    """Without a checkpoint folder signals keep their usual meaning."""

    received = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _saver(checkpoint_dir, fingerprint: str, loop_key, processes: int):
    """``save(progress) -> archive path``: process 0 writes, every process waits until it has."""
    if checkpoint_dir is None:
        return None
    rng = np.asarray(jax.random.key_data(loop_key)) if hasattr(jax.random, "key_data") else np.asarray(loop_key)

    def save(progress: _Progress) -> Path | None:
        path = _save(Path(checkpoint_dir), progress, fingerprint, rng) if jax.process_index() == 0 else None
        if processes > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("loopc checkpoint written")
        return path

    return save


@dataclass
class _Control:
    """Between steps: the test hook, then stopping with a checkpoint when a signal asked for it."""

    save: object
    hook: object
    agreed_only: bool  # across processes every one stops at the same step, on a collective's answer
    signals: object = None

    def requested(self) -> bool:
        return self.signals is not None and self.signals.received is not None

    def after_step(self, progress: _Progress, step: int, batches: int, total, agreed) -> None:
        """Record the position; stop inside the epoch when asked (``total``/``agreed`` are read lazily)."""
        progress.step = step
        if self.hook is not None:
            self.hook(progress.epoch, step)
        stop = agreed() if self.agreed_only else self.requested()
        if stop and step < batches and self.save is not None:
            progress.total = total()
            self.stop(progress)

    def stop(self, progress: _Progress) -> None:
        """Write the checkpoint and raise Preempted naming the position."""
        path = self.save(progress)
        name = self.signals.received or "a signal to another process"
        raise Preempted(f"stopped by {name} in epoch {progress.epoch + 1} after step {progress.step}; "
                        f"checkpoint {path or 'written by process 0'} saved, a retry resumes there")


def _result(progress, early, task, scaling, setup, plan, ran, mesh) -> TrainResult:
    """The TrainResult; rows/s over the epochs run in this call."""
    seconds = sum(h["seconds"] for h in progress.history[len(progress.history) - ran:]) if ran else 0.0
    return TrainResult(
        params=_final_params(progress, early, task, scaling), history=list(progress.history),
        best_epoch=_best_epoch(progress, early), epochs_run=progress.epoch, stopped_early=progress.stopped_early,
        rows_per_second=plan.rows * ran / seconds if seconds > 0 else 0.0,
        compile_seconds=setup.compile_seconds, devices=1 if mesh is None else mesh.size,
        streamed=setup.streamed,
    )


@dataclass(frozen=True)
class _Job:
    """The fixed settings of one training run that compiled functions depend on."""

    task: str
    architecture: dict
    dtype: object
    tx: object
    tx_key: str
    plan: EpochPlan
    mesh: object
    budget: int | None


def _device_budget(override: int | None) -> int | None:
    """Bytes of training data to keep on the device: the override, 40% of its memory, or None."""
    if override is not None:
        return int(override)
    try:
        stats = jax.local_devices()[0].memory_stats() or {}
    except (RuntimeError, NotImplementedError):
        stats = {}
    limit = stats.get("bytes_limit")
    return int(limit * 0.4) if limit else None


def _row_bytes(job: _Job, dim: int) -> int:
    """Bytes a training row takes on the device: its features in the compute dtype, its label and weight."""
    return dim * np.dtype(job.dtype).itemsize + 8


def _resident(job: _Job, dim: int) -> bool:
    """Whether the training rows stay on the device (within its data budget) rather than stream from the host."""
    return job.budget is None or _row_bytes(job, dim) * job.plan.rows <= job.budget


def _setup(job: _Job, progress, train, valid, scaling, per_call: int | None) -> _Setup:
    """Place the data (resident or streamed) and compile; nothing to do when already finished.

    ``per_call`` (with a checkpoint folder) runs epochs in pieces of that many batches.
    """
    if progress.finished:
        return _Setup(None, None, (), None, scaling[1] ** 2, 0.0, False)
    weighted = not bool(np.all(train[2] == 1))
    valid_data = _device_data(*valid, job.dtype, job.mesh, chunk=EVAL_CHUNK) if len(valid[1]) else None
    row_bytes = _row_bytes(job, train[0].shape[1])
    resident = _resident(job, train[0].shape[1])
    common = {"rows": job.plan.rows, "mesh": job.mesh, "dtype": job.dtype}
    if per_call is not None:
        _, eval_fn, seconds = _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan,
                                       job.mesh, progress, None, valid_data, weighted)
        data = (_device_data(*train, job.dtype, job.mesh) if resident
                else (host_rows(train[0], job.dtype), train[1], train[2]))
        chunk = per_call if resident else min(per_call, max(1, job.budget // 4 // (row_bytes * job.plan.batch)))
        started = time.perf_counter()
        order_fn, run = _pieces(job, progress, data, weighted, max(1, int(chunk)), not resident)
        seconds += time.perf_counter() - started
        return _Setup(run, eval_fn, data, valid_data, scaling[1] ** 2, seconds, not resident, mode="pieces",
                      order_fn=order_fn, per_call=max(1, int(chunk)), **common)
    if resident:
        train_data = _device_data(*train, job.dtype, job.mesh)
        epoch_fn, eval_fn, seconds = _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan,
                                              job.mesh, progress, train_data, valid_data, weighted)
        return _Setup(epoch_fn, eval_fn, train_data, valid_data, scaling[1] ** 2, seconds, False, **common)
    chunk = max(1, job.budget // 4 // (row_bytes * job.plan.batch))
    epoch_fn = make_streamed_epoch(job.task, job.architecture, job.dtype, job.tx, job.plan, job.mesh, weighted,
                                   chunk)
    _, eval_fn, seconds = _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan,
                                   job.mesh, progress, None, valid_data, weighted)
    host_data = (host_rows(train[0], job.dtype), train[1], train[2])
    return _Setup(epoch_fn, eval_fn, host_data, valid_data, scaling[1] ** 2, seconds, True, **common)


def _pieces(job: _Job, progress: _Progress, data: tuple, weighted: bool, per_call: int, host: bool) -> tuple:
    """``(order_fn, Pieces)`` compiled ahead of time, kept per settings and shapes like :func:`_compile`."""
    cache_key = json.dumps(["pieces", job.task, job.architecture, str(jnp.dtype(job.dtype)), job.tx_key,
                            job.plan.__dict__, weighted, None if job.mesh is None else job.mesh.size, per_call, host,
                            _avals(progress.params), _avals(data)], sort_keys=True, default=str)
    if cache_key not in _COMPILED:
        order_fn, run = make_epoch_steps(job.task, job.architecture, job.dtype, job.tx, job.plan, job.mesh, weighted)
        state = (progress.params, progress.opt_state, jnp.float32(0.0))
        _COMPILED[cache_key] = (order_fn, compile_pieces(run, order_fn, state, data, job.plan, per_call, host,
                                                         job.mesh))
        while len(_COMPILED) > _COMPILED_KEEP:
            _COMPILED.popitem(last=False)
    _COMPILED.move_to_end(cache_key)
    return _COMPILED[cache_key]


def _global_setup(job: _Job, progress: _Progress, train, valid, scaling, shard: tuple[int, int]) -> _Setup:
    """Across processes: the loop state replicated on the global mesh, this process's rows on the host."""
    lo, hi = shard
    count = jax.process_count()
    LOG.info("process %d of %d trains on rows [%d, %d) of %d", jax.process_index(), count, lo, hi, job.plan.rows)
    bounds = np.array([dist.row_range(job.plan.rows, i, count)[0] for i in range(count)] + [job.plan.rows])
    progress.params = dist.to_global(dist.to_host(progress.params), job.mesh)
    progress.opt_state = dist.to_global(dist.to_host(progress.opt_state), job.mesh)
    if progress.finished:
        return _Setup(None, None, (), None, scaling[1] ** 2, 0.0, False, mode="global")
    local_mesh = data_mesh()
    valid_data = _device_data(*valid, job.dtype, local_mesh, chunk=EVAL_CHUNK) if len(valid[1]) else None
    eval_fn = None
    if valid_data is not None:
        eval_fn = make_evaluate(job.task, job.architecture, job.dtype, min(EVAL_CHUNK, len(valid_data[1])))
    step = make_global_step(job.task, job.architecture, job.dtype, job.tx, job.mesh)
    order_fn = make_order(job.plan)
    data = (train[0], train[1][lo:hi], train[2][lo:hi])
    return _Setup(step, eval_fn, data, valid_data, scaling[1] ** 2, 0.0, True, rows=job.plan.rows, mesh=job.mesh,
                  dtype=job.dtype, mode="global", order_fn=order_fn, shard=(lo, hi, bounds))


def _loop(setup, progress, loop_key, early, epochs, training, control: _Control, limit) -> int:
    """Run epochs until done, stopped early or ``limit`` reached; returns epochs run in this call."""
    every = int(training.get("checkpoint_every", 1))
    ran = 0
    while not progress.finished and (limit is None or ran < limit):
        _run_epoch(setup, progress, loop_key, early, control)
        ran += 1
        progress.finished = progress.stopped_early or progress.epoch >= epochs
        last_of_call = progress.finished or (limit is not None and ran >= limit)
        stopping = not control.agreed_only and control.requested() and not progress.finished
        if control.save is not None and (progress.epoch % every == 0 or last_of_call or stopping):
            if stopping:
                control.stop(progress)
            control.save(progress)
    return ran
