"""Train a model with JAX + optax: device-resident data, whole epochs compiled, early stopping, resume."""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from loopc.runtime.train import checkpoint as ckpt
from loopc.runtime.train.checkpoint import load_params, save_params
from loopc.runtime.train.epoch import (
    EpochPlan,
    data_mesh,
    make_epoch,
    make_evaluate,
    make_streamed_epoch,
    plan_epoch,
    put_replicated,
)
from loopc.runtime.train.inputs import pad_rows, prepare_training_data
from loopc.runtime.train.nets import DTYPES, TrainError, init_params, output_width
from loopc.runtime.train.optim import build_optimizer
from loopc.runtime.train.predict import predict

__all__ = ["TrainError", "TrainResult", "train_model", "predict", "save_params", "load_params"]

EVAL_CHUNK = 16384


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


def _fingerprint(**parts) -> str:
    """A digest of everything a checkpoint must match before it may be resumed."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _save(directory: Path, progress: _Progress, fingerprint: str, rng: np.ndarray) -> None:
    """Write the loop state; the optimizer state is stored as its flat list of leaves."""
    trees = {"params": progress.params}
    if progress.best_params is not None:
        trees["best_params"] = progress.best_params
    meta = {
        "fingerprint": fingerprint, "epoch": progress.epoch, "history": progress.history,
        "best_val": progress.best_val if math.isfinite(progress.best_val) else None,
        "best_epoch": progress.best_epoch, "bad_epochs": progress.bad_epochs,
        "finished": progress.finished, "stopped_early": progress.stopped_early,
    }
    leaves = {"opt_state": jax.tree_util.tree_leaves(progress.opt_state), "rng": [rng]}
    ckpt.save_checkpoint(directory, jax.device_get(trees), jax.device_get(leaves), meta)


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
        x, y, w = pad_rows(x, y, w, min(chunk, max(len(y), 1)))
    return tuple(put_replicated(a, mesh) for a in (x.astype(dtype, copy=False), y, w))


def _host_copy(tree):
    """Numpy copies that stay valid after the device buffers are donated to the next epoch."""
    return jax.tree_util.tree_map(lambda a: np.array(a, copy=True), tree)


def _improved(progress: _Progress, val_loss: float, min_delta: float) -> bool:
    """True when ``val_loss`` beats the best so far by more than ``min_delta``."""
    return val_loss < progress.best_val - min_delta


def _run_epoch(setup: _Setup, progress: _Progress, loop_key, early: dict | None) -> None:
    """Train one epoch, evaluate, update history and early-stopping state in place."""
    started = time.perf_counter()
    params, opt_state, train_loss = setup.epoch_fn(progress.params, progress.opt_state, *setup.train_data,
                                                   loop_key, np.int32(progress.epoch))
    val_loss = setup.eval_fn(params, *setup.valid_data) if setup.eval_fn is not None else None
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
) -> TrainResult:
    """Train with one compiled ``lax.scan`` per epoch over device-resident data; see docs/performance.md.

    Dicts are ``model_dump(mode="json")`` of the spec's Model sections. With ``checkpoint_dir`` the
    loop state is saved every ``training.checkpoint_every`` epochs and when the call ends, and a
    later call resumes from it (ending with the same params as an uninterrupted run);
    ``max_epochs_this_call`` stops after that many epochs (e.g. a time-limited Slurm job).
    Training rows larger than ``device_data_budget`` bytes (default: 40% of the device's memory,
    unlimited on the CPU) stay on the host and are streamed to the device in chunks.
    With early stopping the best params are returned, otherwise the last epoch's.
    """
    if precision not in DTYPES:
        raise TrainError(f"unknown precision '{precision}'; use one of {', '.join(DTYPES)}")
    train, valid, scaling = prepare_training_data(x_train, y_train, x_valid, y_valid, task, num_classes,
                                                  training, sample_weight)
    early = training.get("early_stopping")
    if early is not None and len(valid[1]) == 0:
        raise TrainError("early stopping needs validation rows, but the validation split is empty")
    mesh = data_mesh()
    plan = plan_epoch(len(train[1]), int(training.get("batch_size", 256)), 1 if mesh is None else mesh.size)
    epochs = int(training.get("epochs", 10))
    tx = build_optimizer(optimizer, schedule, epochs * plan.batches)
    init_key, loop_key = jax.random.split(jax.random.PRNGKey(int(training.get("seed", 0))))
    params = init_params(architecture, train[0].shape[1], output_width(task, num_classes), init_key)
    progress = _Progress(params=params, opt_state=tx.init(params))
    fingerprint = _fingerprint(
        task=task, num_classes=num_classes, architecture=architecture, optimizer=optimizer, schedule=schedule,
        training={k: v for k, v in training.items() if k != "checkpoint_every"}, precision=precision,
        shapes=[train[0].shape, valid[0].shape], batch=plan.batch,
    )
    if checkpoint_dir is not None:
        progress = _resume(Path(checkpoint_dir), fingerprint, progress)
    job = _Job(task, architecture, DTYPES[precision], tx, json.dumps([optimizer, schedule, epochs * plan.batches],
               sort_keys=True), plan, mesh, _device_budget(device_data_budget))
    setup = _setup(job, progress, train, valid, scaling)
    ran = _loop(setup, progress, loop_key, early, epochs, training, checkpoint_dir, fingerprint,
                max_epochs_this_call)
    return _result(progress, early, task, scaling, setup, plan, ran, mesh)


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


def _setup(job: _Job, progress, train, valid, scaling) -> _Setup:
    """Place the data (resident or streamed) and compile; nothing to do when already finished."""
    if progress.finished:
        return _Setup(None, None, (), None, scaling[1] ** 2, 0.0, False)
    weighted = not bool(np.all(train[2] == 1))
    valid_data = _device_data(*valid, job.dtype, job.mesh, chunk=EVAL_CHUNK) if len(valid[1]) else None
    row_bytes = train[0].shape[1] * np.dtype(job.dtype).itemsize + 8
    if job.budget is None or row_bytes * job.plan.rows <= job.budget:
        train_data = _device_data(*train, job.dtype, job.mesh)
        epoch_fn, eval_fn, seconds = _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan,
                                              job.mesh, progress, train_data, valid_data, weighted)
        return _Setup(epoch_fn, eval_fn, train_data, valid_data, scaling[1] ** 2, seconds, False)
    chunk = max(1, job.budget // 4 // (row_bytes * job.plan.batch))
    epoch_fn = make_streamed_epoch(job.task, job.architecture, job.dtype, job.tx, job.plan, job.mesh, weighted,
                                   chunk)
    _, eval_fn, seconds = _compile(job.task, job.architecture, job.dtype, job.tx, job.tx_key, job.plan,
                                   job.mesh, progress, None, valid_data, weighted)
    host_data = (train[0].astype(job.dtype, copy=False), train[1], train[2])
    return _Setup(epoch_fn, eval_fn, host_data, valid_data, scaling[1] ** 2, seconds, True)


def _loop(setup, progress, loop_key, early, epochs, training, checkpoint_dir, fingerprint, limit) -> int:
    """Run epochs until done, stopped early or ``limit`` reached; returns epochs run in this call."""
    every = int(training.get("checkpoint_every", 1))
    rng = np.asarray(jax.random.key_data(loop_key)) if hasattr(jax.random, "key_data") else np.asarray(loop_key)
    ran = 0
    while not progress.finished and (limit is None or ran < limit):
        _run_epoch(setup, progress, loop_key, early)
        ran += 1
        progress.finished = progress.stopped_early or progress.epoch >= epochs
        last_of_call = progress.finished or (limit is not None and ran >= limit)
        if checkpoint_dir is not None and (progress.epoch % every == 0 or last_of_call):
            _save(Path(checkpoint_dir), progress, fingerprint, rng)
    return ran
