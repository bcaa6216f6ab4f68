"""Model step kinds: train (resumable from checkpoints), select (best sweep trial), evaluate."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.common import (
    SPLITS,
    copy_bundle_files,
    evaluation,
    group_columns,
    load_bundle,
    read_json,
)
from loopc.runtime.steps.split_scores import predict_matrix
from loopc.runtime.store.artifacts import atomic_write_json, local_artifact


def _matrices(features_dir: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's float32 features and labels, memory-mapped: rows are paged in as they are used."""
    return (np.load(features_dir / f"x_{split}.npy", mmap_mode="r"),
            np.load(features_dir / f"y_{split}.npy", mmap_mode="r"))


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
    from loopc.runtime.train.distributed import maybe_initialize_distributed, row_range

    maybe_initialize_distributed()
    import jax

    from loopc.runtime.evaluate.evaluation import evaluate_predictions
    from loopc.runtime.train.trainer import (
        TrainError,
        predict,
        save_params,
        train_model,
    )

    features_id, _ = ctx.upstream_of_kind("features")
    features_dir = ctx.artifact(features_id)
    model = ctx.config["model"]
    classes = read_json(features_dir / "labels.json")["classes"]
    num_classes = len(classes) if classes is not None else None
    (x_train, y_train), (x_valid, y_valid) = _matrices(features_dir, "train"), _matrices(features_dir, "valid")
    if jax.process_count() > 1:
        ctx.log.info("JAX process %d of %d: training rows [%d, %d) of %d", jax.process_index(), jax.process_count(),
                     *row_range(len(y_train), jax.process_index(), jax.process_count()), len(y_train))
    try:
        result = train_model(x_train, y_train, x_valid, y_valid, task=model["task"], num_classes=num_classes,
                             architecture=model["architecture"], optimizer=model["optimizer"],
                             schedule=model["schedule"], training=model["training"], precision=model["precision"],
                             checkpoint_dir=ctx.scratch_dir("checkpoint"), steps_per_call=_steps_per_call())
        first = jax.process_index() == 0
        valid_pred = predict(result.params, model["architecture"], model["task"], x_valid) if first and len(y_valid) \
            else None
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
    _write_profile(ctx.out_dir, features_dir, predict(result.params, model["architecture"], model["task"], x_train))
    atomic_write_json(ctx.out_dir / "model.json", model)
    copy_bundle_files(features_dir, ctx.out_dir)
    atomic_write_json(ctx.out_dir / "history.json", {"history": result.history, "best_epoch": result.best_epoch})
    valid_metrics = {} if valid_pred is None else evaluate_predictions(model["task"], y_valid, valid_pred,
                                                                      num_classes=num_classes)
    val_losses = [h["val_loss"] for h in result.history if h.get("val_loss") is not None]
    ctx.log.info("trained %d epochs (best %d), %.0f rows/s", result.epochs_run, result.best_epoch,
                 result.rows_per_second)
    return {"model": model["name"], "trial": ctx.config.get("trial"), "sweep_point": ctx.config.get("sweep_point"),
            "epochs": result.epochs_run, "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
            "val_loss": _finite_or_none(min(val_losses)) if val_losses else None,
            "valid_metrics": valid_metrics}


def _write_profile(out_dir: Path, features_dir: Path, train_pred: np.ndarray) -> None:
    """The monitoring reference: the features step's column sketches and the model's train predictions."""
    from loopc.runtime.monitor.profile import complete_profile

    sketch = read_json(features_dir / "profile_sketch.json")
    atomic_write_json(out_dir / "profile.json", complete_profile(sketch["columns"], sketch["rows"], train_pred))


def _trial_value(record: dict[str, Any], metric: str) -> float | None:
    outputs = record.get("outputs") or {}
    value = outputs.get("val_loss") if metric == "val_loss" else (outputs.get("valid_metrics") or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def run_select(ctx: StepContext) -> dict[str, Any]:
    """The sweep trial with the best ``sweep.metric`` (ties: the earliest trial)."""
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
    """Metrics, slices and fairness of the trained model on ``gate.split``."""
    gate = ctx.config["gate"]
    split = gate.get("split", "test")
    features_id, features_record = ctx.upstream_of_kind("features")
    features_dir = ctx.artifact(features_id)
    artifact, key = model_artifact(ctx)
    bundle = load_bundle(local_artifact(ctx.state, artifact))
    y = np.load(features_dir / f"y_{split}.npy")
    pred = predict_matrix(bundle, features_dir / f"x_{split}.npy")
    groups = group_columns(pq.read_table(features_dir / f"slices_{split}.parquet"), gate)
    result = evaluation(bundle.task, y, pred, groups, gate, bundle.num_classes)
    result["split"] = split
    atomic_write_json(ctx.out_dir / "metrics.json", result)
    batches = _write_split_predictions(ctx, features_dir, features_record["outputs"]["split_artifact"], bundle,
                                       {split: pred})
    eval_rows = {"split_artifact": features_record["outputs"]["split_artifact"], "split": split}
    return {"model": bundle.model["name"], "split": split, "rows": result["rows"], "metrics": result["metrics"],
            "model_artifact": artifact, "model_key": key, "eval_rows": eval_rows, "batches": batches}


def dataset_keys(columns: dict[str, dict]) -> list[str]:
    """The columns that identify a row: those declared ``unique`` (in dataset order)."""
    return [name for name, spec in columns.items() if spec.get("unique")]


def _write_split_predictions(ctx: StepContext, features_dir: Path, split_artifact: str, bundle,
                             known: dict) -> int:
    """``predictions_<split>.parquet`` for every split: the dataset's key columns, the label and the prediction
    (``probabilities`` for multiclass), rows in the order of the features step's matrices. The key columns are
    read by record batches in one pass and each batch's rows go to their split's file; returns the batches read."""
    from loopc.runtime.steps.split import open_split

    rows, assignment, _ = open_split(ctx.state, local_artifact(ctx.state, split_artifact))
    keys = [k for k in dataset_keys(rows.columns) if k in rows.names]
    files = {}
    for split in SPLITS:
        pred = known.get(split)
        pred = predict_matrix(bundle, features_dir / f"x_{split}.npy") if pred is None else pred
        files[split] = PredictionFile(ctx.out_dir / f"predictions_{split}.parquet",
                                      np.load(features_dir / f"y_{split}.npy"), pred)
    batches = 0
    if keys:
        for offset, batch in rows.batches(keys):
            batches += 1
            part = np.asarray(assignment[offset:offset + batch.num_rows])
            for index, split in enumerate(SPLITS):
                files[split].write(batch.filter(pa.array(part == index)))
    for file in files.values():
        file.close()
    return batches


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
