"""Shared by the step kinds: labels, the model bundle (params + transform + profile), scoring rows."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.casting import cast_column, one_array
from loopc.runtime.data.split_record import SPLITS
from loopc.runtime.evaluate.metrics import BINARY, MULTICLASS
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.steps.files import read_json

BUNDLE_FILES = ("transform.json", "labels.json", "profile.json", "columns.json")


def label_classes(task: str, column: pa.ChunkedArray) -> list[Any] | None:
    """Sorted class values of a multiclass label (from the train split); None for other tasks."""
    if task != MULTICLASS:
        return None
    values = pc.unique(column.drop_null()).to_pylist()
    return sorted(values, key=lambda v: (str(type(v)), v))


def label_vector(column: pa.ChunkedArray, task: str, classes: list[Any] | None) -> np.ndarray:
    """Labels as float32: 0/1 for binary, class ids for multiclass, values for regression."""
    if column.null_count:
        raise StepFailed(f"the label column has {column.null_count} null value(s); declare it nullable: false")
    if task == MULTICLASS:
        index = {value: i for i, value in enumerate(classes or [])}
        values = column.to_pylist()
        unknown = sorted({str(v) for v in values if v not in index})
        if unknown:
            raise StepFailed(f"label values {unknown[:5]} were not seen in the train split")
        return np.asarray([index[v] for v in values], dtype=np.float32)
    if task == BINARY and not _is_number(column.type):
        column = _binary_flags(column)
    return pc.cast(column, pa.float64()).to_numpy().astype(np.float32)


def _is_number(arrow_type: pa.DataType) -> bool:
    return pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type)


def _binary_flags(column: pa.ChunkedArray) -> pa.Array:
    """A binary label held as text (a category label's two allowed values) read as bools, as validate reads
    a bool column; StepFailed naming the values that do not read as one."""
    flags, bad = cast_column(column, "bool")
    if bad.any():
        shown = sorted({str(v) for v in pc.filter(one_array(column), pa.array(bad)).to_pylist()})[:5]
        raise StepFailed(f"binary label values {shown} do not read as true or false (true/false, yes/no, t/f, 1/0, "
                         "any case): rename the label's two values to such spellings, or declare it as a bool or "
                         "an int with min 0 and max 1")
    return flags


PREDICTED_ROWS = "predicted_rows.json"  # in a model artifact: {"split_artifact"} its predictions_<split>.npy are of


@dataclass(frozen=True)
class ModelBundle:
    """Everything needed to score raw rows: params, architecture, fitted features, label classes."""

    path: Path
    params: dict
    model: dict
    fitted: Any
    classes: list[Any] | None

    @property
    def task(self) -> str:
        return self.model["task"]

    @property
    def num_classes(self) -> int | None:
        return len(self.classes) if self.classes is not None else None

    def profile(self) -> dict[str, Any] | None:
        path = self.path / "profile.json"
        return read_json(path) if path.is_file() else None

    def stored_predictions(self, split_artifact: str, splits: tuple[str, ...] = SPLITS) -> dict[str, np.ndarray]:
        """The train step's predictions of the rows of ``split_artifact``, by split (of ``splits``: only those are
        read), in row order (``predictions_<split>.npy``); none when the model was trained on another split
        (``PREDICTED_ROWS`` names the one it predicted) or before it stored them, no test in a sweep trial's."""
        record = self.path / PREDICTED_ROWS
        if not record.is_file() or read_json(record).get("split_artifact") != split_artifact:
            return {}
        return {split: np.load(self.path / f"predictions_{split}.npy") for split in splits
                if (self.path / f"predictions_{split}.npy").is_file()}

    def score(self, table: pa.Table) -> np.ndarray:
        """Predictions for raw (schema-enforced) rows through this model's own fitted transform."""
        from loopc.runtime.train.predict import predict

        return predict(self.params, self.model["architecture"], self.task, self.fitted.apply(table))

    def labels(self, table: pa.Table) -> np.ndarray:
        return label_vector(table.column(self.model["label"]), self.task, self.classes)


def copy_bundle_files(features_dir: Path, out_dir: Path) -> None:
    """Copy the fitted transform, label classes, reference profile and declared column types into a model artifact."""
    for name in BUNDLE_FILES:
        if (features_dir / name).is_file():
            shutil.copyfile(features_dir / name, out_dir / name)


def load_bundle(path: Path) -> ModelBundle:
    """Read a model artifact written by the train step; StepFailed names what is missing."""
    from loopc.runtime.features.transforms import FittedFeatures
    from loopc.runtime.train.checkpoint import load_params

    missing = [n for n in ("params.npz", "model.json", "transform.json", "labels.json") if not (path / n).is_file()]
    if missing:
        raise StepFailed(f"model artifact {path} lacks {', '.join(missing)}; retrain it with `loopc run`")
    fitted = FittedFeatures.from_json((path / "transform.json").read_text(encoding="utf-8"))
    labels = read_json(path / "labels.json")
    return ModelBundle(path, load_params(path / "params.npz"), read_json(path / "model.json"), fitted,
                       labels.get("classes"))


def evaluation(task: str, y: np.ndarray, pred: np.ndarray, groups: dict[str, np.ndarray], gate: dict[str, Any],
               num_classes: int | None) -> dict[str, Any]:
    """Metrics, per-slice metrics and fairness gaps in the shape ``decide_gate`` reads."""
    from loopc.runtime.evaluate.evaluation import evaluate_predictions, slice_metrics
    from loopc.runtime.evaluate.fairness import fairness_gaps

    result: dict[str, Any] = {"metrics": evaluate_predictions(task, y, pred, num_classes=num_classes),
                              "slices": {}, "fairness": {}, "rows": int(len(y))}
    for rule in gate.get("slices", []):
        column = rule["column"]
        if column in groups and column not in result["slices"]:
            result["slices"][column] = slice_metrics(task, y, pred, groups[column], int(rule.get("min_rows", 30)),
                                                     num_classes=num_classes)
    if task == "binary_classification":
        for rule in gate.get("fairness", []):
            if rule["column"] in groups:
                result["fairness"][rule["column"]] = fairness_gaps(y, pred, groups[rule["column"]])
    return result


def gate_group_names(gate: dict[str, Any]) -> list[str]:
    """The slice and sensitive columns the gate names, sorted."""
    return sorted({r["column"] for r in gate.get("slices", [])} | {r["column"] for r in gate.get("fairness", [])})


def group_columns(table: pa.Table, gate: dict[str, Any]) -> dict[str, np.ndarray]:
    """The slice and sensitive columns the gate names, as string arrays."""
    return {c: np.asarray(pc.cast(table.column(c), pa.string()).to_pylist(), dtype=object).astype(str)
            for c in gate_group_names(gate) if c in table.column_names}


def loopc_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("loopc")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def current_champion(ctx: StepContext, model: str):
    """The model's champion version, or None; a project without a registry yet stays without one
    (asking creates nothing)."""
    from loopc.runtime.registry.connect import project_registry_url, registry_exists
    from loopc.runtime.registry.interface import CHAMPION

    if not registry_exists(project_registry_url(ctx.state)):
        return None
    return ctx.registry.get_alias(model, CHAMPION)
