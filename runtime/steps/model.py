"""Model step kinds: train (resumable from checkpoints), select (best sweep trial), evaluate."""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.data.split_record import SPLITS
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.common import PREDICTED_ROWS, copy_bundle_files, evaluation, load_bundle
from loopc.runtime.steps.features import PROFILE_POINTS
from loopc.runtime.steps.files import read_json, writing
from loopc.runtime.steps.matrices import MatrixSource, build_matrices, split_predictions
from loopc.runtime.steps.split_rows import open_split
from loopc.runtime.steps.split_scores import score_every_split
from loopc.runtime.steps.trial_matrices import remove_shared, shares, trial_matrices
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact


def _finite_or_none(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _steps_per_call() -> int:
    """Batches per compiled call (how often a signal can stop training): ``$LOOPC_STEPS_PER_CALL``, else 64."""
    from loopc.runtime.train.trainer import STEPS_PER_CALL

    value = os.environ.get("LOOPC_STEPS_PER_CALL", "")
    return int(value) if value.isdigit() and int(value) > 0 else STEPS_PER_CALL


def run_train(ctx: StepContext) -> dict[str, Any]:
    """Train with checkpoints in a per-key scratch folder, so a killed run resumes where it stopped.

    In a multi-process job (several Slurm tasks) every process trains on its rows; only process 0
    writes the model, the others return after training.
    """
    from loopc.runtime.train.distributed import maybe_initialize_distributed

    several = maybe_initialize_distributed()
    import jax

    from loopc.runtime.evaluate.evaluation import evaluate_predictions
    from loopc.runtime.monitor.profile import ProfileError, complete_profile
    from loopc.runtime.train.trainer import (
        TrainError,
        predict,
        save_params,
        train_model,
    )

    features_id, features_record = ctx.upstream_of_kind("features")
    features_dir = ctx.artifact(features_id)
    model = ctx.config["model"]
    classes = read_json(features_dir / "labels.json")["classes"]
    num_classes = len(classes) if classes is not None else None
    source = MatrixSource(ctx.state, features_record["outputs"]["split_artifact"], features_dir)
    # one process: JAX starts its backend and compiles on a thread while the matrices are built (no JAX call here
    # before they are, which would start the backend on this thread)
    index, count = (jax.process_index(), jax.process_count()) if several else (0, 1)
    compiled_ahead = None if several else CompileAhead.start(source, model, num_classes, ctx.log)
    first = index == 0
    sketch = _reference_sketch(features_dir) if first else None
    try:  # the profile is counted while the matrices are built: a profile that cannot be made fails before training
        if shares(ctx.config, ctx.store, count):
            train, valid, columns = trial_matrices(ctx.state, features_record["key"], source, sketch,
                                                   _profile_counter(sketch), ctx.log)
            test = None  # only the selected trial is evaluated: it scores its test rows there
        else:
            train, valid, test = _train_matrices(ctx, source, sketch, index, count, test_too=first)
            columns = sketch.sketches() if first else None
    except ProfileError as exc:
        raise StepFailed(f"the reference profile of model '{model['name']}': {exc}") from None
    finally:
        ahead_seconds = compiled_ahead.wait() if compiled_ahead is not None else 0.0
    (x_train, y_train), (x_valid, y_valid) = (train.x, train.y), (valid.x, valid.y)
    if count > 1:
        ctx.log.info("JAX process %d of %d: training rows [%d, %d) of %d", index, count,
                     train.start, train.start + len(x_train), len(y_train))
    try:
        result = train_model(x_train, y_train, x_valid, y_valid, task=model["task"], num_classes=num_classes,
                             architecture=model["architecture"], optimizer=model["optimizer"],
                             schedule=model["schedule"], training=model["training"], precision=model["precision"],
                             checkpoint_dir=ctx.scratch_dir("checkpoint"), steps_per_call=_steps_per_call())
        valid_pred = predict(result.params, model["architecture"], model["task"], x_valid) if first and len(y_valid) \
            else None
        test_pred = None if test is None else predict(result.params, model["architecture"], model["task"], test.x)
    except TrainError as exc:
        raise StepFailed(f"training model '{model['name']}': {exc}") from None
    if result.resumed_at is not None:
        ctx.log.info("resumed from the checkpoint at epoch %d, step %d", result.resumed_at[0] + 1,
                     result.resumed_at[1])
    if jax.process_index() != 0:
        ctx.log.info("process %d of %d: trained; process 0 writes the model", jax.process_index(),
                     jax.process_count())
        return {}
    save_params(ctx.out_dir / "params.npz", result.params)
    train_pred = split_predictions(source, "train", train, result.params, model["architecture"], model["task"])
    atomic_write_json(ctx.out_dir / "profile.json", complete_profile(columns, sketch.rows, train_pred), compact=True)
    _write_predictions(ctx.out_dir, source.split_artifact, {"train": train_pred, "valid": valid_pred,
                                                            "test": test_pred})
    atomic_write_json(ctx.out_dir / "model.json", model)
    copy_bundle_files(features_dir, ctx.out_dir)
    compile_seconds = ahead_seconds + result.compile_seconds
    atomic_write_json(ctx.out_dir / "history.json", {"history": result.history, "best_epoch": result.best_epoch,
                                                     "compile_seconds": compile_seconds,
                                                     "compiled_ahead_seconds": ahead_seconds})
    valid_metrics = {} if valid_pred is None else evaluate_predictions(model["task"], y_valid, valid_pred,
                                                                      num_classes=num_classes)
    val_losses = [h["val_loss"] for h in result.history if h.get("val_loss") is not None]
    ctx.log.info("trained %d epochs (best %d) in %.2f s after compiling for %.2f s (%.2f s of it while the matrices "
                 "were built), %.0f rows/s", result.epochs_run, result.best_epoch,
                 sum(h["seconds"] for h in result.history), compile_seconds, ahead_seconds, result.rows_per_second)
    return {"model": model["name"], "trial": ctx.config.get("trial"), "sweep_point": ctx.config.get("sweep_point"),
            "epochs": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "val_loss": _finite_or_none(min(val_losses)) if val_losses else None,
            "valid_metrics": valid_metrics}


class CompileAhead:
    """The model's training functions compiled on a thread (``trainer.compile_ahead``) for the shapes the
    split's record and the fitted transform give, while this thread builds the matrices."""

    def __init__(self, work: Callable[[], float], log):
        self.seconds, self.log = 0.0, log
        self.thread = threading.Thread(target=self._run, args=(work,), name="loopc-compile-ahead")

    @classmethod
    def start(cls, source: MatrixSource, model: dict[str, Any], num_classes: int | None, log) -> CompileAhead | None:
        """Started, or None where the shapes cannot be known yet (building the matrices says why)."""
        from loopc.runtime.train.trainer import compile_ahead

        try:
            counts = source.split_counts()
            rows, valid_rows, dim = counts["train"], counts["valid"], source.fitted().dim
        except Exception:  # noqa: BLE001 - the matrices' build reads both again and reports what is wrong
            return None
        ahead = cls(partial(compile_ahead, rows, valid_rows, dim, task=model["task"],
                            num_classes=num_classes, architecture=model["architecture"],
                            optimizer=model["optimizer"], schedule=model["schedule"], training=model["training"],
                            precision=model["precision"], steps_per_call=_steps_per_call()), log)
        ahead.thread.start()
        return ahead

    def _run(self, work: Callable[[], float]) -> None:
        try:
            self.seconds = work()
        except Exception as exc:  # noqa: BLE001 - training compiles again and reports what is wrong there
            self.log.info("compiling ahead did not work (%s: %s); training compiles itself", type(exc).__name__, exc)

    def wait(self) -> float:
        """The seconds spent compiling ahead, once done."""
        self.thread.join()
        return self.seconds


def _write_predictions(out_dir: Path, split_artifact: str, predictions: dict[str, np.ndarray | None]) -> None:
    """The model's predictions of the rows of ``split_artifact`` by split, in row order (``predictions_<split>.npy``,
    the split named in ``PREDICTED_ROWS``): evaluate, gate and shadow take them instead of scoring those rows again
    (None: not predicted here)."""
    for split, values in predictions.items():
        if values is not None:
            with writing(out_dir / f"predictions_{split}.npy") as path:
                np.save(path, np.asarray(values))
    atomic_write_json(out_dir / PREDICTED_ROWS, {"split_artifact": split_artifact})


def _reference_sketch(features_dir: Path):
    """The features step's observed reference profile, ready to count the train rows."""
    from loopc.runtime.monitor.profile import ProfileSketch

    return ProfileSketch.from_observed(read_json(features_dir / PROFILE_POINTS))


def _profile_counter(sketch):
    """The hook that counts ``sketch`` over every train row of the batches the matrices are built from."""

    def count_train_rows(batch: pa.Table, part: np.ndarray) -> None:
        train = part == 0
        if sketch.numeric and train.any():
            sketch.count(batch.select(sketch.numeric).filter(pa.array(train)))

    return count_train_rows


def _train_matrices(ctx: StepContext, source: MatrixSource, sketch, index: int, count: int, *, test_too: bool):
    """(train, valid, test or None) matrices; with several processes only this process's train rows. ``sketch``
    (process 0's) counts every train row's profiled numeric columns on the way. The test matrix (``test_too``)
    comes from the same pass: the trained model predicts it, so evaluate starts no JAX backend to score it."""
    from loopc.runtime.train.distributed import row_range

    shard = row_range(source.split_counts()["train"], index, count) if count > 1 else None
    splits = ("train", "valid", "test") if test_too else ("train", "valid")
    built = build_matrices(source, splits, ctx.scratch_dir("matrices"),
                           keep=None if shard is None else {"train": shard},
                           hook=None if sketch is None else _profile_counter(sketch),
                           hook_columns=() if sketch is None else tuple(sketch.numeric),
                           tag="" if count == 1 else f".{index}")
    return built["train"], built["valid"], built.get("test")


def _trial_value(record: dict[str, Any], metric: str) -> float | None:
    outputs = record.get("outputs") or {}
    value = outputs.get("val_loss") if metric == "val_loss" else (outputs.get("valid_metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def run_select(ctx: StepContext) -> dict[str, Any]:
    """The sweep trial with the best ``sweep.metric`` (ties: the earliest trial). Every trial has run, so the
    matrices they shared (steps/trial_matrices) are removed first."""
    for record in [r for r in ctx.upstream.values() if r.get("kind") == "features"]:
        remove_shared(ctx.state, record["key"])  # every trial has run: the matrices they shared go
    sweep = ctx.config["sweep"]
    metric, maximize = sweep["metric"], sweep.get("direction", "minimize") == "maximize"
    values = {trial: _trial_value(ctx.upstream[trial], metric) for trial in ctx.config["trials"]}
    scored = [(v, i, t) for i, (t, v) in enumerate(values.items()) if v is not None]
    if not scored:
        raise StepFailed(f"no sweep trial has a value for '{metric}'; pick a metric the trials report "
                         "(val_loss or a validation metric of the task)")
    best = max(scored, key=lambda s: (s[0], -s[1])) if maximize else min(scored, key=lambda s: (s[0], s[1]))
    trial = best[2]
    return {"best_trial": trial, "metric": metric, "value": best[0], "trials": values,
            "model_artifact": ctx.upstream[trial]["artifact"], "model_key": ctx.upstream[trial]["key"],
            "sweep_point": ctx.upstream[trial]["outputs"].get("sweep_point")}


def model_artifact(ctx: StepContext) -> tuple[str, str]:
    """(artifact path relative to the state dir, cache key) of the model this step evaluates."""
    for record in ctx.upstream.values():
        if record.get("kind") == "select":
            return record["outputs"]["model_artifact"], record["outputs"]["model_key"]
    _, record = ctx.upstream_of_kind("train")
    return record["artifact"], record["key"]


def run_evaluate(ctx: StepContext) -> dict[str, Any]:
    """Metrics, slices and fairness of the trained model on ``gate.split``, and every split's predictions file,
    from one pass over the rows through the model's fitted transform."""
    gate = ctx.config["gate"]
    split = gate.get("split", "test")
    _, features_record = ctx.upstream_of_kind("features")
    split_artifact = features_record["outputs"]["split_artifact"]
    artifact, key = model_artifact(ctx)
    bundle = load_bundle(local_artifact(ctx.state, artifact))
    rows, _, _ = open_split(ctx.state, local_artifact(ctx.state, split_artifact))
    keys, spill = [k for k in dataset_keys(rows.columns) if k in rows.names], KeySpill(ctx.scratch_dir("keys"))
    scored = score_every_split(ctx.state, split_artifact, bundle, gate=gate, group_split=split, keys=keys,
                               key_sink=spill.add, known=bundle.stored_predictions(split_artifact))
    result = evaluation(bundle.task, scored.labels[split], scored.predictions[split], scored.groups, gate,
                        bundle.num_classes)
    result["split"] = split
    atomic_write_json(ctx.out_dir / "metrics.json", result)
    for name in SPLITS:
        file = PredictionFile(ctx.out_dir / f"predictions_{name}.parquet", scored.labels[name],
                              scored.predictions[name])
        for keys_batch in spill.batches(name):
            file.write(keys_batch)
        file.close()
    eval_rows = {"split_artifact": split_artifact, "split": split}
    return {"model": bundle.model["name"], "split": split, "rows": result["rows"], "metrics": result["metrics"],
            "model_artifact": artifact, "model_key": key, "eval_rows": eval_rows, "batches": scored.batches}


def dataset_keys(columns: dict[str, dict]) -> list[str]:
    """The columns that identify a row: those declared ``unique`` (in dataset order)."""
    return [name for name, spec in columns.items() if spec.get("unique")]


class KeySpill:
    """Each split's key columns, appended batch by batch to a Parquet file in ``folder`` and read back in order
    once the predictions are known (the keys are not held in memory)."""

    def __init__(self, folder: Path):
        self.folder, self.writers, self.schema = folder, {}, None

    def add(self, split: str, keys: pa.Table) -> None:
        path, self.schema = self.folder / f"keys_{split}.parquet", keys.schema
        with writing(path):
            if split not in self.writers:
                self.writers[split] = pq.ParquetWriter(path, keys.schema)
            self.writers[split].write_table(keys)

    def batches(self, split: str) -> Iterator[pa.Table]:
        """The split's key columns in row order; a split without rows gets one empty table of the keys' schema
        (its predictions file still has the key columns); nothing when no keys were added at all."""
        writer = self.writers.pop(split, None)
        if writer is None:
            yield from [] if self.schema is None else [self.schema.empty_table()]
            return
        writer.close()
        for batch in pq.ParquetFile(self.folder / f"keys_{split}.parquet").iter_batches():
            yield pa.Table.from_batches([batch])


class PredictionFile:
    """One split's predictions file, written as key batches arrive (their rows are the split's next rows);
    without key columns, the labels and predictions alone, in slices."""

    SLICE = 65536

    def __init__(self, path: Path, labels: np.ndarray, predictions: np.ndarray):
        self.path, self.labels, self.predictions = path, labels, predictions
        self.writer, self.done = None, 0

    def write(self, keys: pa.Table | None, count: int | None = None) -> None:
        """The next ``count`` rows (default: as many as ``keys`` has) with these key columns."""
        count = keys.num_rows if count is None else count
        if self.writer is not None and not count:
            return
        table = self._rows(keys, self.done, self.done + count)
        self.writer = self.writer or pq.ParquetWriter(self.path, table.schema)
        self.writer.write_table(table)
        self.done += count

    def close(self) -> None:
        """Rows no key batch covered (there are none when the dataset has key columns), then the file."""
        for start in range(self.done, len(self.labels), self.SLICE):
            self.write(None, min(self.SLICE, len(self.labels) - start))
        if self.writer is None:
            self.write(None, 0)
        self.writer.close()

    def _rows(self, keys: pa.Table | None, start: int, stop: int) -> pa.Table:
        columns = {k: keys.column(k) for k in keys.column_names} if keys is not None else {}
        columns["label"] = pa.array(np.asarray(self.labels[start:stop], np.float32))
        pred = self.predictions[start:stop]
        if pred.ndim == 2:
            flat = pa.array(np.ascontiguousarray(pred, np.float32).reshape(-1))
            columns["probabilities"] = pa.FixedSizeListArray.from_arrays(flat, pred.shape[1])
        else:
            columns["score"] = pa.array(np.asarray(pred, np.float32))
        return pa.table(columns)
