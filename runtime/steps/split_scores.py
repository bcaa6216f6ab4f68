"""Models score a split's raw rows batch by batch: only predictions, labels and group values are kept.

Evaluate scores every split in one pass (score_every_split); gate and shadow read one split's rows. Record
batches are projected to the columns the models' transforms, the label and the gate's groups need. The
metrics (AUC ranks every row) need every prediction at once, so the predictions and labels are collected
(a few floats per row, about 12 bytes for a binary model); nothing else outlives its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import batch_rows
from loopc.runtime.data.split_record import SPLITS
from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.features.transforms import FeatureError
from loopc.runtime.steps.common import ModelBundle, gate_group_names, group_columns
from loopc.runtime.steps.split_rows import open_split, opened_split_batches
from loopc.runtime.store.artifacts import local_artifact


class ChunkedPredictor:
    """One model's predictions of raw rows added batch by batch (``train.predict.Predictor`` over the
    bundle's fitted transform): bit for bit those of one ``predict`` call over all of them."""

    def __init__(self, bundle: ModelBundle):
        from loopc.runtime.train.predict import Predictor

        self.bundle = bundle
        self.predictor = Predictor(bundle.params, bundle.model["architecture"], bundle.task)

    def add(self, table: pa.Table) -> None:
        """Score raw rows (through the bundle's fitted transform)."""
        self.predictor.add(self.bundle.fitted.apply(table))

    def add_features(self, x: np.ndarray) -> None:
        """Score rows of the float32 feature matrix."""
        self.predictor.add(x)

    def result(self) -> np.ndarray:
        return self.predictor.result()


@dataclass(frozen=True)
class EverySplit:
    """One model's predictions and labels of every split's rows, ``group_split``'s gate group values, and how
    many record batches were read."""

    predictions: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    groups: dict[str, np.ndarray]
    batches: int


KeySink = Callable[[str, pa.Table], None]  # (split, the key columns of its next rows)


def score_every_split(state: Path, split_artifact: str, bundle: ModelBundle, *, gate: dict, group_split: str,
                      keys: list[str], key_sink: KeySink | None = None,
                      known: dict[str, np.ndarray] | None = None) -> EverySplit:
    """One pass over the rows: each batch through the bundle's fitted transform, its rows' predictions, labels
    (and ``keys`` columns, handed to ``key_sink``) routed to their split; the gate's groups of ``group_split``.
    Predictions are bit for bit one ``predict`` call over the split's feature matrix. Splits in ``known`` (the
    train step's predictions of their rows) are not scored again: only their labels are read, and with every
    split known the model's input columns are not read at all."""
    known = known or {}
    rows, assignment, record = open_split(state, local_artifact(state, split_artifact))
    for split, predictions in known.items():  # before any row is read
        if len(predictions) != record["counts"][split]:
            raise StepFailed(f"the model's stored predictions of the {split} split hold {len(predictions)} rows, the "
                             f"split {record['counts'][split]}; retrain the model on these rows")
    names = [n for n in gate_group_names(gate) if n in rows.names]
    predictors = {s: ChunkedPredictor(bundle) for s in SPLITS if s not in known}
    inputs, features = (bundle.fitted.input_columns, bundle.fitted.dim) if predictors else ((), 0)
    wanted = sorted({*inputs, bundle.model["label"], *names, *keys} & set(rows.names))
    scored = np.array([s not in known for s in SPLITS])
    labels, groups, batches = {s: [] for s in SPLITS}, {n: [] for n in names}, 0
    try:
        for offset, batch in rows.batches(wanted, batch_rows(4 * features + 8 * len(wanted))):
            batches += 1
            part = np.asarray(assignment[offset:offset + batch.num_rows])
            x, x_part = _scored_rows(bundle, batch, part, scored)
            y = bundle.labels(batch)
            for index, split in enumerate(SPLITS):
                keep = part == index
                if not keep.any():
                    continue
                if split in predictors:
                    predictors[split].add_features(x[x_part == index])
                labels[split].append(y[keep])
                if split == group_split or (keys and key_sink is not None):
                    chosen = batch.select([*names, *keys]).filter(pa.array(keep))
                    if split == group_split:
                        for name, values in group_columns(chosen, gate).items():
                            groups[name].append(values)
                    if keys and key_sink is not None:
                        key_sink(split, chosen.select(keys))
    except FeatureError as exc:
        raise StepFailed(f"model '{bundle.model['name']}': {exc}") from None
    except DataError as exc:
        raise StepFailed(str(exc)) from None
    y = {s: np.concatenate(v) if v else np.zeros(0, np.float32) for s, v in labels.items()}
    predictions = {s: known[s] if s in known else predictors[s].result() for s in SPLITS}
    return EverySplit(predictions, y, {n: np.concatenate(v) for n, v in groups.items() if v}, batches)


def _scored_rows(bundle: ModelBundle, batch: pa.Table, part: np.ndarray,
                 scored: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The feature rows of the batch's rows in scored splits (a view of the feature-major matrix) and their splits."""
    wanted = scored[part]
    if wanted.all():
        return bundle.fitted.apply_columns(batch, threads=None).T, part
    if not wanted.any():
        return None, part[wanted]
    return bundle.fitted.apply_columns(batch.filter(pa.array(wanted)), threads=None).T, part[wanted]


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
                labels_by: ModelBundle, gate: dict | None = None,
                known: list[np.ndarray | None] | None = None) -> SplitScores:
    """Every bundle's predictions on ``split``'s rows, ``labels_by``'s labels and ``gate``'s group columns.
    A bundle whose ``known`` entry is not None (its predictions of these rows, computed by an earlier step) is not
    scored again: with every entry known only labels and groups are read, and no JAX is imported."""
    known = known or [None] * len(bundles)
    label, names = labels_by.model["label"], gate_group_names(gate or {})
    scored = [b for b, k in zip(bundles, known, strict=True) if k is None]
    wanted = sorted({c for b in scored for c in b.fitted.input_columns} | {label} | set(names))
    rows, assignment, record = open_split(state, local_artifact(state, split_artifact))
    for bundle, values in zip(bundles, known, strict=True):  # before any row is read
        if values is not None and len(values) != record["counts"][split]:
            raise StepFailed(f"the stored predictions of model '{bundle.model['name']}' on the {split} split hold "
                             f"{len(values)} rows, the split {record['counts'][split]}; run the step that wrote "
                             "them again")
    predictors = [ChunkedPredictor(b) for b in scored]
    labelled, labels, groups, batches = label in rows.names, [], {n: [] for n in names}, 0
    for batch in opened_split_batches(rows, assignment, split, wanted):
        batches += 1
        for predictor in predictors:
            predictor.add(batch)
        if labelled:
            labels.append(labels_by.labels(batch))
        for name, values in group_columns(batch, gate or {}).items():
            groups[name].append(values)
    results = iter([p.result() for p in predictors])
    y = (np.concatenate(labels) if labels else np.zeros(0, np.float32)) if labelled else None
    return SplitScores([next(results) if k is None else k for k in known], y,
                       {n: np.concatenate(v) for n, v in groups.items() if v}, batches)
