"""Differential: on tables of random columns (nulls, NaN, infinities, few and many categories, files missing a
column) and random feature chains, the features step fitted from validate's split summary gives what it gives
when it reads the rows (the same project with the summary removed from the validate artifact)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data.split_record import ASSIGNMENT, SAMPLE, SUMMARY
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step
from tests.test_data_path import assert_close

TYPES = ("float", "int", "bool", "category", "string")
NUMERIC_CHAINS = ([], [{"kind": "standardize"}], [{"kind": "minmax"}], [{"kind": "impute"}],
                  [{"kind": "impute"}, {"kind": "standardize"}], [{"kind": "clip", "min": 0.0}, {"kind": "log"}],
                  [{"kind": "impute", "strategy": "median"}], [{"kind": "bucketize", "quantiles": 4}],
                  [{"kind": "log", "offset": 1000.0}])
TEXT_CHAINS = ([{"kind": "onehot"}], [{"kind": "onehot", "max_categories": 3}],
               [{"kind": "onehot", "min_frequency": 40}], [{"kind": "hash", "buckets": 4}])


def _column(rng: np.random.Generator, kind: str, rows: int) -> pa.Array:
    nulls = rng.random(rows) < rng.choice([0.0, 0.05])
    if kind == "float":
        values = rng.normal(rng.normal(0, 50), rng.uniform(0.1, 10), rows)
        values[rng.random(rows) < rng.choice([0.0, 0.02])] = np.nan
        values[rng.random(rows) < rng.choice([0.0, 0.01])] = np.inf
        return pa.array(values, mask=nulls)
    if kind == "int":
        return pa.array(rng.integers(-20, 20, rows), mask=nulls)
    if kind == "bool":
        return pa.array(rng.random(rows) < 0.3, mask=nulls)
    distinct = int(rng.choice([3, 12, 30]))
    return pa.array(rng.choice([f"v{i}" for i in range(distinct)], rows).astype(object), mask=nulls)


def _project(root: Path, seed: int, label: str = "bool") -> None:
    rng = np.random.default_rng(seed)
    kinds = {f"c{i}": str(rng.choice(TYPES)) for i in range(8)}
    features = {}
    for name, kind in kinds.items():
        chains = TEXT_CHAINS if kind in ("category", "string") else NUMERIC_CHAINS
        for index in rng.choice(len(chains), 2, replace=False):
            features[f"{name}_{index}"] = {"column": name, "transforms": list(chains[index])}
    (root / "data").mkdir(parents=True)
    rows = [1700, 2300]
    for part, count in enumerate(rows):
        columns = {"id": pa.array([f"k{part}-{i}" for i in range(count)])}
        columns |= {name: _column(rng, kind, count) for name, kind in kinds.items()}
        columns["label"] = {"bool": pa.array(rng.random(count) < 0.4),
                            "category": pa.array(rng.choice(["low", "mid", "high"], count)),
                            "int": pa.array(rng.choice([3, 7, 11], count))}[label]
        table = pa.table(columns)
        if part == 1:
            table = table.drop_columns(["c7"])  # a column one file lacks: null in its rows
        pq.write_table(table, root / "data" / f"part-{part}.parquet", row_group_size=int(rng.choice([300, 900])))
    declared = {"id": {"type": "string", "nullable": False}, **{n: {"type": k} for n, k in kinds.items()},
                "label": {"type": label, "nullable": False}}
    spec = {
        "loopc": 1, "pipeline": {"name": "diff"},
        "datasets": {"rows": {"source": {"path": "data/*.parquet"}, "columns": declared,
                              "split": {"method": "hash", "key": "id", "seed": seed, "train": 0.7, "valid": 0.15,
                                        "test": 0.15}}},
        "features": features,
        "model": {"name": "m", "task": "binary_classification" if label == "bool" else "multiclass_classification",
                  "dataset": "rows", "label": "label",
                  "features": list(features), "architecture": {"kind": "linear"},
                  "training": {"epochs": 1, "batch_size": 256, "seed": 0}},
        "gate": {"split": "test", "thresholds": [{"metric": "accuracy", "min": 0.0}], "no_champion": "promote"},
    }
    (root / "pipeline.yaml").write_text(json.dumps(spec), encoding="utf-8")  # JSON is YAML


def _features(root: Path, drop_summary: bool) -> Path:
    plan_file = compile_local(root / "pipeline.yaml")[0].train_plan
    steps = {s["id"]: s for s in json.loads(plan_file.read_text(encoding="utf-8"))["steps"]}
    records = {}
    for step_id in ("validate.rows", "split.rows", "features.m"):
        records[step_id] = run_step(load_step(plan_file.parent / steps[step_id]["file"]), root, "r1")
        assert records[step_id]["status"] == "done", records[step_id]
        validate = root / ".loopc" / records["validate.rows"]["artifact"]
        if step_id == "validate.rows":
            assert (validate / SUMMARY).exists()
            if drop_summary:
                for name in (SUMMARY, SAMPLE, ASSIGNMENT):
                    (validate / name).unlink()
    return root / ".loopc" / records["features.m"]["artifact"]


@pytest.mark.parametrize("seed, label", [(1, "bool"), (2, "bool"), (3, "category"), (4, "int")])
def test_features_from_the_summary_equal_features_from_the_rows(tmp_path, seed, label):
    """A multiclass label's classes come from the summary's counts (category) or from the rows (int)."""
    summarised, read = tmp_path / "summarised", tmp_path / "read"
    _project(summarised, seed, label)
    shutil.copytree(summarised, read)
    got, want = _features(summarised, drop_summary=False), _features(read, drop_summary=True)
    for name in ("transform.json", "labels.json", "profile_points.json"):
        assert_close(json.loads((got / name).read_text(encoding="utf-8")),
               json.loads((want / name).read_text(encoding="utf-8")), name)
    classes = json.loads((got / "labels.json").read_text(encoding="utf-8"))["classes"]
    assert classes == {"bool": None, "category": ["high", "low", "mid"], "int": [3, 7, 11]}[label]
