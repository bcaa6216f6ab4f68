"""The features step: fit transforms on train only, write every split's float32 matrix, sketch the profile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import ValidatedRows, batch_rows
from loopc.runtime.evaluate.metrics import MULTICLASS
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.features.transforms import FeatureError
from loopc.runtime.steps.common import SPLITS, label_classes, label_vector, read_json, writing
from loopc.runtime.steps.split import SPLIT_FILE, open_split, split_batches
from loopc.runtime.store.artifacts import atomic_write_bytes, atomic_write_json, local_artifact

PROFILE_SKETCH = "profile_sketch.json"
COLUMNS_FILE = "columns.json"
BLOCK_ROWS = 8192  # matrix rows gathered and written at once: 2 MB at 64 features, within a core's L2 cache


def _fit_pass(ctx: StepContext, rows: ValidatedRows, split_artifact: str, train_rows: int):
    """Fit the transforms on the train rows and observe the profile: from validate's summary of the train
    rows (split_summary) what it determines, the rest in passes of record batches reading only the columns
    still needed (usually none or one pass). (fitted, classes, sketch)"""
    from loopc.runtime.features.fitting import StreamingFit
    from loopc.runtime.monitor.profile import ProfileSketch
    from loopc.runtime.monitor.summarised import summarised_columns

    label, task = ctx.config["label"], ctx.config["task"]
    summary = _train_summary(ctx, split_artifact, train_rows)
    summaries = {name: summary.column(name) for name in ctx.config["columns"]} if summary else None
    fit = StreamingFit(ordered_features(ctx.config), ctx.config["columns"], train_rows, summaries=summaries)
    profiled = _profiled(ctx, rows)
    known = summarised_columns(profiled, summary, train_rows) if summary else {}
    observe = [c for c in profiled if c not in known]
    sketch, labels = ProfileSketch({c: profiled[c] for c in observe}, train_rows), []
    classes = _summarised_classes(task, summary.column(label) if summary else {})
    need_labels, passes = task == MULTICLASS and classes is None, 0
    while fit.pending or (passes == 0 and (observe or need_labels)):
        first, fitting = passes == 0, fit.pending
        wanted = [*(fit.columns if fitting else []), *(observe if first else []), *([label] if first and need_labels else [])]
        for batch in split_batches(ctx.state, split_artifact, "train", list(dict.fromkeys(wanted))):
            if fitting:
                fit.update(batch)
            if first and observe:
                sketch.observe(batch.select(observe))
            if first and need_labels:
                labels.append(pc.unique(batch.column(label)))
        if fitting:
            fit.end_pass()
        passes += 1
    for name, column in known.items():
        sketch.columns[name], sketch.types[name] = column, profiled[name]["type"]
    if need_labels:
        classes = label_classes(task, pa.chunked_array(labels))
    return fit.result(), classes, sketch


def _train_summary(ctx: StepContext, split_artifact: str, train_rows: int):
    """Validate's summary of this split's train rows (split_summary), or None when it holds none of them."""
    from loopc.runtime.data.split_summary import read_summary

    record = read_json(local_artifact(ctx.state, split_artifact) / SPLIT_FILE)
    summary = read_summary(local_artifact(ctx.state, record["rows_artifact"]), record["split"])
    return summary if summary is not None and summary.counts["train"] == train_rows else None


def _summarised_classes(task: str, column: dict) -> list[Any] | None:
    """A multiclass label's classes from the summary's counts of the train labels (None: read them)."""
    counts = column.get("counts")
    if task != MULTICLASS or counts is None:
        return None
    return label_classes(task, pa.chunked_array([pa.array([value for value, _ in counts["values"]])]))


def ordered_features(config: dict[str, Any]) -> dict[str, dict]:
    """The features in ``model.features`` order (the step document's JSON sorts the ``features`` keys):
    the matrix columns, transform.json and every exported artifact follow that order."""
    order = config.get("feature_order") or list(config["features"])
    return {name: config["features"][name] for name in order}


def _profiled(ctx: StepContext, rows: ValidatedRows) -> dict[str, dict]:
    """The profiled columns the train step's reference profile describes, with their specs."""
    return {c: ctx.config["columns"][c] for c in ctx.config["profile_columns"]
            if c in rows.names and c in ctx.config["columns"]}


class _NpyAppender:
    """A float32 .npy file of a known shape, written front to back by appending row blocks.

    Plain writes, not a memory map: written pages are not counted in this process's memory.
    """

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.rows, self.written = path, shape[0], 0
        with writing(path):
            self.handle = open(path, "wb")  # noqa: SIM115 (closed in close())
            header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                      "shape": shape}
            np.lib.format.write_array_header_1_0(self.handle, header)

    def append(self, block: np.ndarray) -> None:
        with writing(self.path):
            self.handle.write(np.ascontiguousarray(block, dtype=np.float32).data)
        self.written += len(block)

    def close(self) -> None:
        with writing(self.path):
            self.handle.close()
        if self.written != self.rows:
            raise StepFailed(f"'{self.path}' got {self.written} rows, expected {self.rows}; the rows changed while "
                             "they were read: run again")


class _SplitWriter:
    """One split's float32 matrix and labels (.npy appended batch by batch, in row order) and slice columns."""

    def __init__(self, out_dir: Path, split: str, rows: int, dim: int):
        self.out_dir, self.split, self.slices = out_dir, split, None
        self.x = _NpyAppender(out_dir / f"x_{split}.npy", (rows, dim))
        self.y = _NpyAppender(out_dir / f"y_{split}.npy", (rows,))

    def add(self, by_row: np.ndarray, chosen: np.ndarray, y: np.ndarray, slices: pa.Table) -> None:
        """The rows ``chosen`` of the batch's matrix ``by_row``, gathered and written a block at a time (a block
        is still in the cache when it is written), their labels ``y`` and ``slices``."""
        for start in range(0, len(chosen), BLOCK_ROWS):
            self.x.append(by_row[chosen[start:start + BLOCK_ROWS]])
        self.y.append(y)
        with writing(self.out_dir / f"slices_{self.split}.parquet") as path:
            if self.slices is None:
                self.slices = pq.ParquetWriter(path, slices.schema)
            self.slices.write_table(slices)

    def close(self, schema: pa.Schema) -> None:
        self.x.close()
        self.y.close()
        with writing(self.out_dir / f"slices_{self.split}.parquet") as path:
            if self.slices is None:
                pq.write_table(schema.empty_table(), path)
            else:
                self.slices.close()


def _write_matrices(ctx: StepContext, rows: ValidatedRows, assignment: np.ndarray, fitted, classes,
                    counts: dict[str, int], slices: list[str], sketch) -> None:
    """Every split's matrix, labels and slice columns, written batch by batch in row order; the train
    rows' profiled numeric columns are counted into the profile sketch on the way."""
    label, task = ctx.config["label"], ctx.config["task"]
    needed = sorted({c for c in fitted.input_columns if c in rows.names} | {label} | set(slices) | set(sketch.numeric))
    writers = {s: _SplitWriter(ctx.out_dir, s, counts[s], fitted.dim) for s in SPLITS}
    size = batch_rows(4 * (fitted.dim + len(needed)) + 8 * len(needed))
    try:
        for offset, batch in rows.batches(needed, size):
            part = np.asarray(assignment[offset:offset + batch.num_rows])
            by_row = fitted.apply_columns(batch, threads=None).T  # [rows, dim], each column contiguous
            y = label_vector(batch.column(label), task, classes)
            for index, split in enumerate(SPLITS):
                keep = part == index
                if not keep.any():
                    continue
                chosen, mask = np.flatnonzero(keep), pa.array(keep)
                writers[split].add(by_row, chosen, y[chosen], batch.select(slices).filter(mask))
                if index == 0:
                    sketch.count(batch.select(sketch.numeric).filter(mask))
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None
    except DataError as exc:
        raise StepFailed(f"dataset '{ctx.config['dataset_name']}': {exc}") from None
    for split, writer in writers.items():
        writer.close(pa.schema([pa.field(c, pa.string()) for c in slices]))


def run_features(ctx: StepContext) -> dict[str, Any]:
    """Fit transforms on train only (streamed, usually one pass); write every split's float32 matrix,
    labels and slice columns batch by batch (a second pass), and the profiled train columns' sketches."""
    split_id, split_record = ctx.upstream_of_kind("split")
    rows, assignment, record = open_split(ctx.state, ctx.artifact(split_id))
    counts, label, task = record["counts"], ctx.config["label"], ctx.config["task"]
    if label not in rows.names:
        raise StepFailed(f"model '{ctx.config['model_name']}': label column '{label}' is not in the dataset")
    if not counts["train"]:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': cannot fit features: the train split "
                         "has no rows")
    try:
        fitted, classes, sketch = _fit_pass(ctx, rows, split_record["artifact"], counts["train"])
    except FeatureError as exc:
        raise StepFailed(f"features of model '{ctx.config['model_name']}': {exc}") from None
    with writing(ctx.out_dir / "transform.json") as path:
        path.write_text(fitted.to_json(), encoding="utf-8")
    with writing(ctx.out_dir / "labels.json") as path:
        atomic_write_json(path, {"task": task, "label": label, "classes": classes})
    with writing(ctx.out_dir / COLUMNS_FILE) as path:  # declared types: scoring casts its input the same way
        atomic_write_json(path, ctx.config["columns"])
    slices = [c for c in ctx.config["slice_columns"] if c in rows.names]
    _write_matrices(ctx, rows, assignment, fitted, classes, counts, slices, sketch)
    with writing(ctx.out_dir / PROFILE_SKETCH) as path:  # compact: the C encoder, not indent's Python one
        atomic_write_bytes(path, json.dumps({"rows": counts["train"], "columns": sketch.sketches()}, sort_keys=True,
                                            separators=(",", ":")).encode("utf-8"))
    return {"model": ctx.config["model_name"], "features": fitted.dim, "split_artifact": split_record["artifact"],
            "rows": counts, "classes": classes}
