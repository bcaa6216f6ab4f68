"""The example data generators: data that passes its dataset spec, a learnable signal, and a real drift."""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml
from scipy import stats

from loopc.runtime.data.checks import enforce_schema, run_checks
from loopc.runtime.data.snapshot import read_source
from loopc.runtime.data.split import split_table
from loopc.runtime.features.transforms import fit_features

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"
CASES = {"churn": ("customers", "customers"), "demand": ("store_sales", "sales")}
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def _generator(example: str):
    spec = importlib.util.spec_from_file_location(f"generate_{example}", EXAMPLES / example / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dataset(example: str) -> dict:
    return yaml.safe_load((EXAMPLES / example / "dataset" / f"{CASES[example][0]}.yaml").read_text())


def _features(example: str) -> dict:
    """The pipeline's features, with the ``transform:`` shorthand expanded like the spec models do."""
    features = {}
    for name, feature in yaml.safe_load((EXAMPLES / example / "pipeline.yaml").read_text())["features"].items():
        feature = dict(feature)
        if "transform" in feature:
            one = feature.pop("transform")
            feature["transforms"] = one if isinstance(one, list) else [one]
        feature["transforms"] = [{"kind": t} if isinstance(t, str) else t for t in feature.get("transforms", [])]
        features[name] = feature
    return features


def _validated(example: str, root: Path) -> pa.Table:
    dataset = _dataset(example)
    table, violations = enforce_schema(read_source(dataset["source"], root), dataset["columns"], example)
    assert violations == []
    failed = [c for c in run_checks(table, dataset["checks"], NOW) if not c.passed]
    assert failed == []
    return table


@pytest.mark.parametrize("example", sorted(CASES))
@pytest.mark.parametrize("drifted", [False, True])
def test_generated_data_passes_its_schema_and_checks(example, drifted, tmp_path):
    generate = _generator(example).generate
    written = generate(tmp_path, rows=1500, seed=3, batch=None, drifted=drifted, append=True)
    expected = [tmp_path / "data" / "incoming" / "batch-001.parquet"] if drifted else []
    expected.append(tmp_path / "data" / CASES[example][1] / f"batch-{int(drifted):03d}.parquet")
    assert written == expected
    assert _validated(example, tmp_path).num_rows == 1500


@pytest.mark.parametrize("example", sorted(CASES))
def test_generation_is_byte_for_byte_deterministic(example, tmp_path):
    generate = _generator(example).generate
    [first] = generate(tmp_path / "a", rows=300, seed=5, batch=0, drifted=False, append=False)
    [second] = generate(tmp_path / "b", rows=300, seed=5, batch=0, drifted=False, append=False)
    assert first.read_bytes() == second.read_bytes()
    [other] = generate(tmp_path / "c", rows=300, seed=6, batch=0, drifted=False, append=False)
    assert other.read_bytes() != first.read_bytes()


@pytest.mark.parametrize("example", sorted(CASES))
def test_command_line(example, tmp_path):
    script = EXAMPLES / example / "generate.py"
    done = subprocess.run([sys.executable, str(script), "--root", str(tmp_path), "--rows", "600", "--batch", "2"],
                          capture_output=True, text=True, check=True)
    path = tmp_path / "data" / CASES[example][1] / "batch-002.parquet"
    assert done.stdout.strip() == f"wrote {path}"
    assert len(script.read_text().splitlines()) < 200


def test_appended_batches_keep_customer_ids_unique(tmp_path):
    generate = _generator("churn").generate
    generate(tmp_path, rows=800, seed=1, batch=0, drifted=False, append=False)
    generate(tmp_path, rows=800, seed=1, batch=None, drifted=True, append=True)
    assert _validated("churn", tmp_path).num_rows == 1600


def _logistic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Newton's method for a ridge-regularised logistic regression (with intercept as the last column)."""
    x = np.hstack([x, np.ones((len(x), 1))])
    weights = np.zeros(x.shape[1])
    for _ in range(25):
        p = 1 / (1 + np.exp(-x @ weights))
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + 1e-3 * np.eye(len(weights))
        weights -= np.linalg.solve(hessian, x.T @ (p - y) + 1e-3 * weights)
    return weights


def _predict(weights: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(x @ weights[:-1] + weights[-1])))


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    positives, negatives = score[y == 1], score[y == 0]
    return stats.mannwhitneyu(positives, negatives).statistic / (len(positives) * len(negatives))


def test_churn_signal_is_learnable_fair_and_sliceable(tmp_path):
    _generator("churn").generate(tmp_path, rows=4000, seed=42, batch=0, drifted=False, append=False)
    parts = split_table(_validated("churn", tmp_path), _dataset("churn")["split"])
    fitted = fit_features(parts["train"], _features("churn"), _dataset("churn")["columns"])
    label = {n: parts[n].column("churned").to_numpy(zero_copy_only=False).astype(float) for n in parts}
    weights = _logistic(fitted.apply(parts["train"]).astype(float), label["train"])
    score = _predict(weights, fitted.apply(parts["test"]).astype(float))
    assert 0.75 <= _auc(label["test"], score) <= 0.87
    test = parts["test"]
    gender = np.asarray(test.column("gender").to_pylist())
    rates = [float((score[gender == g] > 0.5).mean()) for g in ("female", "male", "nonbinary")]
    assert max(rates) - min(rates) < 0.10
    region = np.asarray(test.column("region").to_pylist())
    assert min(int((region == r).sum()) for r in ("north", "south", "east", "west")) >= 50


def test_demand_signal_is_learnable(tmp_path):
    _generator("demand").generate(tmp_path, rows=4000, seed=7, batch=0, drifted=False, append=False)
    parts = split_table(_validated("demand", tmp_path), _dataset("demand")["split"])
    fitted = fit_features(parts["train"], _features("demand"), _dataset("demand")["columns"])
    design = {n: np.hstack([fitted.apply(parts[n]), np.ones((parts[n].num_rows, 1))]) for n in parts}
    units = {n: parts[n].column("units").to_numpy() for n in parts}
    weights = np.linalg.lstsq(design["train"], units["train"], rcond=None)[0]
    error = units["test"] - design["test"] @ weights
    assert 1 - (error**2).sum() / ((units["test"] - units["test"].mean()) ** 2).sum() > 0.5
    family = np.asarray(parts["test"].column("family").to_pylist())
    assert max(np.abs(error[family == f]).mean() for f in np.unique(family)) < 6.0


def test_churn_drift_is_real(tmp_path):
    module = _generator("churn")
    base = module.make_table(4000, 42, 0, False)
    drifted = module.make_table(4000, 42, 1, True)
    charges = [t.column("monthly_charges").to_numpy() for t in (base, drifted)]
    assert stats.ks_2samp(*charges).pvalue < 1e-10 and charges[1].mean() > charges[0].mean() + 10
    monthly = [np.mean(np.asarray(t.column("contract").to_pylist()) == "monthly") for t in (base, drifted)]
    assert monthly[1] > monthly[0] + 0.15
    assert "crypto" not in base.column("payment_method").to_pylist()
    assert "crypto" in drifted.column("payment_method").to_pylist()
    # The label relationship changed: tenure matters much less after the drift.
    features = {"tenure": {"column": "tenure_months", "transforms": [{"kind": "standardize"}]}}
    fitted = fit_features(base, features, _dataset("churn")["columns"])
    slopes = [_logistic(fitted.apply(t).astype(float), t.column("churned").to_numpy(zero_copy_only=False).astype(float))[0]
              for t in (base, drifted)]
    assert slopes[0] < slopes[1] - 0.3


def test_demand_drift_is_real():
    module = _generator("demand")
    base, drifted = module.make_table(4000, 7, 0, False), module.make_table(4000, 7, 1, True)
    assert stats.ks_2samp(base.column("price").to_numpy(), drifted.column("price").to_numpy()).pvalue < 1e-10
    assert "pet_supplies" in drifted.column("family").to_pylist()
    assert "pet_supplies" not in base.column("family").to_pylist()
    assert drifted.column("date").to_pylist()[0] > base.column("date").to_pylist()[-1]
