"""Models score one split's raw rows batch by batch: only predictions, labels and group values are kept.

Gate and shadow read the split's rows as record batches projected to the columns the models'
transforms, the label and the gate's groups need. The metrics (AUC ranks every row) need every
prediction at once, so the predictions and labels are collected (a few floats per row, about 12
bytes for a binary model); nothing else outlives its batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopc.runtime.steps.common import ModelBundle, gate_group_names, group_columns
from loopc.runtime.steps.split import split_batches


class ChunkedPredictor:
    """One model's predictions of raw rows added batch by batch (``train.predict.Predictor`` over the
    bundle's fitted transform): bit for bit those of one ``predict`` call over all of them."""

    def __init__(self, bundle: ModelBundle):
        from loopc.runtime.train.predict import Predictor

        self.bundle = bundle
        self.predictor = Predictor(bundle.params, bundle.model["architecture"], bundle.task)
        self.chunk = self.predictor.chunk

    def add(self, table: pa.Table) -> None:
        """Score raw rows (through the bundle's fitted transform)."""
        self.predictor.add(self.bundle.fitted.apply(table))

    def add_features(self, x: np.ndarray) -> None:
        """Score rows of the float32 feature matrix."""
        self.predictor.add(x)

    def result(self) -> np.ndarray:
        return self.predictor.result()


def npy_blocks(path: Path, rows: int) -> Iterator[np.ndarray]:
    """A 2-D .npy matrix ``rows`` rows at a time, read (not memory-mapped: mapped pages would count in the
    step's memory until the end) into one block-sized buffer each."""
    with open(path, "rb") as handle:
        version = np.lib.format.read_magic(handle)
        header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = header(handle)
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-ordered 2-D matrix, got shape {shape}")
        for start in range(0, shape[0], rows):
            count = min(rows, shape[0] - start)
            yield np.fromfile(handle, dtype, count * shape[1]).reshape(count, shape[1])


def predict_matrix(bundle: ModelBundle, path: Path) -> np.ndarray:
    """The bundle's predictions of every row of a feature matrix file, read block by block; bit for bit
    one ``predict`` call over the whole matrix."""
    predictor = ChunkedPredictor(bundle)
    for block in npy_blocks(path, predictor.chunk):
        predictor.add_features(block)
    return predictor.result()


@dataclass(frozen=True)
class SplitScores:
    """Per model its predictions, the labels (None when the rows have no label column), the gate's group
    values as strings, and how many record batches were read."""

    predictions: list[np.ndarray]
    labels: np.ndarray | None
    groups: dict[str, np.ndarray]
    batches: int

    @property
    def rows(self) -> int:
        return len(self.predictions[0]) if self.predictions else 0


def score_split(state: Path, split_artifact: str, split: str, bundles: list[ModelBundle], *,
                labels_by: ModelBundle, gate: dict | None = None) -> SplitScores:
    """Every bundle's predictions on ``split``'s rows, ``labels_by``'s labels and ``gate``'s group columns."""
    label, names = labels_by.model["label"], gate_group_names(gate or {})
    wanted = sorted({c for b in bundles for c in b.fitted.input_columns} | {label} | set(names))
    predictors = [ChunkedPredictor(b) for b in bundles]
    labels, groups, batches, labelled = [], {n: [] for n in names}, 0, True
    for batch in split_batches(state, split_artifact, split, wanted):
        batches += 1
        for predictor in predictors:
            predictor.add(batch)
        labelled = labelled and label in batch.column_names
        if labelled:
            labels.append(labels_by.labels(batch))
        for name, values in group_columns(batch, gate or {}).items():
            groups[name].append(values)
    y = (np.concatenate(labels) if labels else np.zeros(0, np.float32)) if labelled else None
    return SplitScores([p.result() for p in predictors], y, {n: np.concatenate(v) for n, v in groups.items() if v},
                       batches)
