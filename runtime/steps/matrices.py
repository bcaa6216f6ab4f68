"""Split matrices built where they are read: the features step's fitted transform applied to a split's raw rows.

One pass over the validated rows' record batches gives every requested split's float32 feature matrix and
label vector, in row order: bit for bit ``FittedFeatures.apply`` of the split's rows. A matrix lives in
memory when it and the matrices before it fit ``MATRIX_SHARE`` of ``LOOPC_MEMORY_BUDGET``, else it is written
to a .npy in the step's scratch folder and memory-mapped, so a dataset larger than the budget still trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.parallel import ColumnMap, column_pool
from loopc.runtime.data.rows import batch_rows, memory_budget
from loopc.runtime.data.split_record import SPLITS
from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.features.transforms import FeatureError, FittedFeatures
from loopc.runtime.steps.common import label_vector
from loopc.runtime.steps.files import read_json, writing
from loopc.runtime.steps.split import SPLIT_FILE
from loopc.runtime.steps.split_rows import open_split, split_batches
from loopc.runtime.store.artifacts import local_artifact

BLOCK_ROWS = 8192  # matrix rows gathered at once: 2 MB at 64 features, within a core's L2 cache
MATRIX_SHARE = 0.5  # of the memory budget: the matrices held in memory, the rest for batches and training

BatchHook = Callable[[pa.Table, np.ndarray], None]  # (a batch of every split's rows, their split indices)


@dataclass(frozen=True)
class SplitMatrix:
    """One split's features (rows ``[start, start + len(x))`` of the split) and every row's label."""

    x: np.ndarray
    y: np.ndarray
    start: int = 0


@dataclass(frozen=True)
class MatrixSource:
    """What builds the matrices: the split's rows and the features artifact's transform and labels."""

    state: Path
    split_artifact: str
    features_dir: Path

    def fitted(self) -> FittedFeatures:
        return FittedFeatures.from_json((self.features_dir / "transform.json").read_text(encoding="utf-8"))

    def labels(self) -> dict:
        return read_json(self.features_dir / "labels.json")

    def split_counts(self) -> dict[str, int]:
        return read_json(local_artifact(self.state, self.split_artifact) / SPLIT_FILE)["counts"]


def held_in_memory(rows: int, dim: int) -> bool:
    """Whether ``rows`` float32 rows of ``dim`` features fit the matrices' share of the memory budget."""
    return rows * dim * 4 <= MATRIX_SHARE * memory_budget()


def _empty_matrix(rows: int, dim: int, in_memory: bool, path: Path) -> np.ndarray:
    if in_memory:
        return np.empty((rows, dim), np.float32)
    with writing(path):
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))


def _changed(done: dict[str, int], counts: dict[str, int]) -> StepFailed:
    return StepFailed(f"the split's rows per split were {done}, its record says {counts}; the rows changed while "
                      "they were read: run again")


def build_matrices(source: MatrixSource, splits: tuple[str, ...], scratch: Path, *,
                   keep: dict[str, tuple[int, int]] | None = None, hook: BatchHook | None = None,
                   hook_columns: tuple[str, ...] = (), tag: str = "", on_disk: bool = False) -> dict[str, SplitMatrix]:
    """Every split in ``splits``: its matrix (only rows ``keep[split]`` = ``(lo, hi)`` of it when given) and all
    its labels, from one pass over the rows. ``hook(batch, part)`` sees each batch (``hook_columns`` read too)
    with its rows' split indices. A matrix is held in memory when it and those of the splits before it in
    ``splits`` fit; the others, or all with ``on_disk``, go to ``scratch/x_<split><tag>.npy``."""
    rows, assignment, record = open_split(source.state, local_artifact(source.state, source.split_artifact))
    fitted, labels = source.fitted(), source.labels()
    counts = record["counts"]
    spans = {s: (keep or {}).get(s, (0, counts[s])) for s in splits}
    x, held = {}, 0
    for split, (lo, hi) in spans.items():  # in memory while the splits so far fit: a later split never evicts train
        held += hi - lo
        x[split] = _empty_matrix(hi - lo, fitted.dim, not on_disk and held_in_memory(held, fitted.dim),
                                 scratch / f"x_{split}{tag}.npy")
    y = {s: np.empty(counts[s], np.float32) for s in splits}
    needed = sorted({c for c in fitted.input_columns if c in rows.names} | {labels["label"]} | set(hook_columns))
    done = dict.fromkeys(splits, 0)  # the split's rows before this batch
    size = batch_rows(4 * (fitted.dim + len(needed)) + 8 * len(needed))
    try:
        with column_pool() as mapped:  # gathering rows into the matrix, a block per thread
            for offset, batch in rows.batches(needed, size):
                part = np.asarray(assignment[offset:offset + batch.num_rows])
                if hook is not None:
                    hook(batch, part)
                batch_y = label_vector(batch.column(labels["label"]), labels["task"], labels["classes"])
                by_row = None
                for split, (lo, hi) in spans.items():
                    picked, first = np.flatnonzero(part == SPLITS.index(split)), done[split]
                    done[split] += len(picked)
                    if done[split] > counts[split]:
                        raise _changed(done, counts)
                    y[split][first:first + len(picked)] = batch_y[picked]
                    wanted = picked[max(lo - first, 0):max(hi - first, 0)]
                    if len(wanted):
                        by_row = fitted.apply_columns(batch, threads=None).T if by_row is None else by_row
                        _gather(by_row, wanted, x[split], max(first, lo) - lo, mapped)
    except FeatureError as exc:
        raise StepFailed(f"the features' fitted transform: {exc}") from None
    except DataError as exc:
        raise StepFailed(str(exc)) from None
    if done != {s: counts[s] for s in splits}:
        raise _changed(done, counts)
    return {s: SplitMatrix(x[s], y[s], spans[s][0]) for s in splits}


def _gather(by_row: np.ndarray, rows: np.ndarray, out: np.ndarray, at: int, mapped: ColumnMap) -> None:
    """Rows ``rows`` of the batch's matrix into ``out[at:]``, a block at a time (a block stays in the cache), the
    blocks on ``mapped``'s threads (each writes its own rows; the copies and the fresh pages' faults overlap)."""

    def block(start: int) -> None:
        picked = rows[start:start + BLOCK_ROWS]
        out[at + start:at + start + len(picked)] = by_row[picked]  # fancy indexing: np.take is 20x slower here

    mapped(block, range(0, len(rows), BLOCK_ROWS))


def split_predictions(source: MatrixSource, split: str, matrix: SplitMatrix, params: dict, architecture: dict,
                      task: str) -> np.ndarray:
    """Predictions of every row of ``split``: from ``matrix`` when it holds them all, else (one process's rows
    of several) from the split's rows read again through the transform; bit for bit the same."""
    from loopc.runtime.train.predict import Predictor

    predictor = Predictor(params, architecture, task)
    if matrix.start == 0 and len(matrix.x) == len(matrix.y):
        predictor.add(matrix.x)
        return predictor.result()
    fitted = source.fitted()
    for batch in split_batches(source.state, source.split_artifact, split, fitted.input_columns):
        predictor.add(fitted.apply(batch))
    return predictor.result()
