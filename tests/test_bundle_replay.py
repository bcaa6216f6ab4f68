"""The bundle's score.py replays every feature transform exactly as loopc applies it (nulls, unseen
categories, numbers as categories, hash buckets, expressions), and its exported network predicts what
loopc's predict does, for every task."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.export.bundle import ExportError, write_bundle
from loopc.runtime.export.bundle_score import load, table_columns
from loopc.runtime.features.transforms import fit_features
from loopc.runtime.train.checkpoint import save_params
from loopc.runtime.train.predict import predict

FEATURES = {
    "age": {"column": "age", "transforms": [{"kind": "clip", "min": 0, "max": 90}, "standardize"]},
    "income": {"column": "income", "transforms": ["minmax"]},  # nulls, no impute: a :missing column
    "debt": {"column": "debt", "transforms": [{"kind": "impute", "strategy": "median"}, {"kind": "log", "offset": 1}]},
    "score_band": {"column": "score", "transforms": [{"kind": "bucketize", "quantiles": 4}]},
    "plan": {"column": "plan", "transforms": [{"kind": "onehot", "max_categories": 2}]},
    "city": {"column": "city", "transforms": [{"kind": "hash", "buckets": 7}]},
    "segment": {"column": "segment"},  # text without transforms: implicit onehot
    "ratio": {"expr": "debt / (age + 1)", "transforms": ["standardize"]},
    "zone": {"column": "zone", "transforms": ["onehot"]},  # integer codes used as categories
}
COLUMNS = {"zone": {"type": "category"}}


def table(rows: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    income = rng.normal(50, 10, rows)
    return pa.table({
        "age": pa.array(rng.integers(-5, 100, rows)),
        "income": pa.array(income, mask=rng.random(rows) < 0.1),
        "debt": pa.array(rng.exponential(3, rows), mask=rng.random(rows) < 0.05),
        "score": pa.array(rng.normal(600, 50, rows)),
        "plan": pa.array(rng.choice(["basic", "pro", "team", "gold"], rows), mask=rng.random(rows) < 0.05),
        "city": pa.array(rng.choice(["Lyon", "Köln", "東京", "", "Zürich"], rows)),
        "segment": pa.array(rng.choice(["a", "b"], rows)),
        "zone": pa.array(rng.integers(1, 4, rows)),
    })


def artifact(folder: Path, task: str, classes: list | None, seed: int = 0) -> tuple[Path, object, dict, dict]:
    fitted = fit_features(table(400, seed), FEATURES, COLUMNS)
    dim, outputs = fitted.dim, len(classes) if classes else 1
    rng = np.random.default_rng(seed + 1)
    params = {"layer_0": {"w": rng.normal(size=(dim, 5)).astype(np.float32), "b": rng.normal(size=5).astype(np.float32)},
              "layer_1": {"w": rng.normal(size=(5, outputs)).astype(np.float32), "b": np.zeros(outputs, np.float32)}}
    if task == "regression":
        params["target"] = {"shift": np.float32(3.0), "scale": np.float32(2.0)}
    model = {"name": "m", "task": task, "label": "y", "features": list(FEATURES),
             "architecture": {"kind": "mlp", "hidden": [5], "activation": "tanh"}}
    folder.mkdir()
    (folder / "transform.json").write_text(fitted.to_json())
    save_params(folder / "params.npz", params)
    (folder / "model.json").write_text(json.dumps(model))
    (folder / "labels.json").write_text(json.dumps({"task": task, "label": "y", "classes": classes}))
    return folder, fitted, params, model


def test_features_replay_exactly_on_new_rows_with_unseen_values(tmp_path):
    folder, fitted, _, _ = artifact(tmp_path / "a", "binary_classification", None)
    model = load(write_bundle(folder, tmp_path / "bundle"))
    fresh = table(300, 99)
    fresh = fresh.set_column(4, "plan", pa.array(["platinum"] * 150 + [None] * 150))  # unseen and null
    expected = fitted.apply(fresh.set_column(7, "zone", fresh.column("zone").cast(pa.string())))
    got = model.features(table_columns(fresh, model.schema))
    assert model.feature_names == fitted.names and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-6, rtol=0)
    as_lists = {c: fresh.column(c).to_pylist() for c in fresh.column_names}
    np.testing.assert_allclose(model.features(as_lists), expected, atol=1e-6, rtol=0)


def test_a_value_beyond_float32_after_its_transforms_is_refused_as_loopc_refuses_it(tmp_path):
    from loopc.runtime.export.bundle_score import BundleError
    from loopc.runtime.features.transforms import FeatureError

    folder, fitted, _, _ = artifact(tmp_path / "a", "binary_classification", None)
    model = load(write_bundle(folder, tmp_path / "bundle"))
    fresh = table(50, 7)
    income = fresh.column("income").to_pylist()
    income[3] = 1e300  # minmax leaves it near 1e298: float32 would make it inf
    fresh = fresh.set_column(1, "income", pa.array(income, pa.float64()))
    with pytest.raises(FeatureError) as loopc_error:
        fitted.apply(fresh.set_column(7, "zone", fresh.column("zone").cast(pa.string())))
    with pytest.raises(BundleError) as bundle_error:
        model.features(table_columns(fresh, model.schema))
    assert str(bundle_error.value) == str(loopc_error.value)
    assert "feature 'income' (column 'income'): 1 value(s) beyond the float32 range" in str(bundle_error.value)
    income[3] = 3e38  # still within float32 after minmax: scored as loopc scores it
    fresh = fresh.set_column(1, "income", pa.array(income, pa.float64()))
    np.testing.assert_allclose(model.features(table_columns(fresh, model.schema)),
                               fitted.apply(fresh.set_column(7, "zone", fresh.column("zone").cast(pa.string()))),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize("task, classes", [("binary_classification", None), ("regression", None),
                                           ("multiclass_classification", ["x", "y", "z"])])
def test_exported_network_predicts_what_loopc_predicts(tmp_path, task, classes):
    folder, fitted, params, model_dict = artifact(tmp_path / "a", task, classes)
    model = load(write_bundle(folder, tmp_path / "bundle", version=3))
    rows = table(200, 5)
    x = fitted.apply(rows.set_column(7, "zone", rows.column("zone").cast(pa.string())))
    expected = predict(params, model_dict["architecture"], task, x)
    got = model.predict(table_columns(rows, model.schema))
    if classes:
        np.testing.assert_allclose(got["probabilities"], expected, atol=1e-6, rtol=0)
        assert got["label"] == [classes[i] for i in expected.argmax(axis=1)]
    else:
        np.testing.assert_allclose(got["score"], expected, atol=1e-6, rtol=0)
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["version"] == 3


def test_a_damaged_artifact_is_refused_and_leaves_no_folder(tmp_path):
    folder, *_ = artifact(tmp_path / "a", "binary_classification", None)
    (folder / "labels.json").unlink()
    with pytest.raises(ExportError, match="labels.json"):
        write_bundle(folder, tmp_path / "bundle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
