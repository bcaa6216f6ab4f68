"""Unequal split fractions land where the spec says, and features are fitted on the train split only,
through the real validate -> split -> features steps of a compiled plan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data.split import split_table
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step
from loopc.runtime.features.transforms import FittedFeatures
from loopc.runtime.steps.matrices import MatrixSource, build_matrices

TRAIN, VALID, TEST = 0.5, 0.3, 0.2  # every fraction different: a swap of any two shows


def table(rows: int) -> pa.Table:
    return pa.table({"id": [f"r{i:05d}" for i in range(rows)], "t": np.arange(rows), "x": np.arange(rows) * 1.0})


@pytest.mark.parametrize("method", ["random", "time"])
def test_unequal_fractions_give_exact_sizes_for_random_and_time_splits(method):
    split = {"method": method, "train": TRAIN, "valid": VALID, "test": TEST, "seed": 3, "column": "t"}
    parts = split_table(table(1000), split)
    assert {name: part.num_rows for name, part in parts.items()} == {"train": 500, "valid": 300, "test": 200}


def test_a_time_split_keeps_the_order_train_then_valid_then_test():
    split = {"method": "time", "column": "t", "train": TRAIN, "valid": VALID, "test": TEST}
    parts = split_table(table(100), split)
    assert parts["train"].column("t").to_pylist() == list(range(0, 50))
    assert parts["valid"].column("t").to_pylist() == list(range(50, 80))
    assert parts["test"].column("t").to_pylist() == list(range(80, 100))


def test_unequal_fractions_of_a_hash_split_hold_within_sampling_error():
    parts = split_table(table(20_000), {"method": "hash", "key": "id", "train": TRAIN, "valid": VALID,
                                        "test": TEST, "seed": 0})  # fmt: skip
    for name, fraction in (("train", TRAIN), ("valid", VALID), ("test", TEST)):
        assert abs(parts[name].num_rows / 20_000 - fraction) < 0.015, name


SPEC = """\
loopc: 1
pipeline: {name: fitcheck}
datasets:
  rows:
    source: {path: data/rows.parquet}
    columns:
      t: {type: int, nullable: false}
      x: {type: float, nullable: false}
      y: {type: bool, nullable: false}
    split: {method: time, column: t, train: 0.5, valid: 0.3, test: 0.2}
features:
  x_std: {column: x, transform: standardize}
model:
  name: m
  task: binary_classification
  dataset: rows
  label: y
  features: [x_std]
  architecture: {kind: linear}
  training: {epochs: 1}
"""


def run_until(project: Path, last: str) -> dict[str, dict]:
    """Run the compiled train plan's steps in order up to and including ``last``; their run records."""
    plan_file = compile_local(project / "pipeline.yaml")[0].train_plan
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    records = {}
    for step in plan["steps"]:
        records[step["id"]] = run_step(load_step(plan_file.parent / step["file"]), project, "fit")
        assert records[step["id"]]["status"] == "done", records[step["id"]]
        if step["id"] == last:
            return records
    raise AssertionError(f"no step {last} in the plan")


def test_the_features_step_fits_on_train_rows_only(tmp_path: Path):
    rows = 100
    t = np.arange(rows)
    rng = np.random.default_rng(0)
    # train rows (first half in time) centre on 0; valid rows on 100, test rows on -50: fitting on
    # anything but the train rows moves the mean and the standard deviation.
    x = np.where(t < 50, rng.normal(0, 1, rows), np.where(t < 80, 100.0, -50.0))
    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"t": t, "x": x, "y": t % 2 == 0}), tmp_path / "data" / "rows.parquet")
    (tmp_path / "pipeline.yaml").write_text(SPEC, encoding="utf-8")
    records = run_until(tmp_path, "features.m")
    assert records["split.rows"]["outputs"]["split_rows"] == {"train": 50, "valid": 30, "test": 20}
    artifact = tmp_path / ".loopc" / records["features.m"]["artifact"]
    fitted = FittedFeatures.from_json((artifact / "transform.json").read_text(encoding="utf-8"))
    train_x = x[:50]
    expected = (train_x - train_x.mean()) / train_x.std()
    source = MatrixSource(tmp_path / ".loopc", records["features.m"]["outputs"]["split_artifact"], artifact)
    built = build_matrices(source, ("train", "valid", "test"), tmp_path)
    np.testing.assert_allclose(built["train"].x[:, 0], expected, rtol=1e-5, atol=1e-5)
    valid = built["valid"].x[:, 0]
    np.testing.assert_allclose(valid, (100.0 - train_x.mean()) / train_x.std(), rtol=1e-5)
    np.testing.assert_allclose(built["test"].x[:, 0], (-50.0 - train_x.mean()) / train_x.std(),
                               rtol=1e-5)  # fmt: skip
    assert fitted.dim == 1
