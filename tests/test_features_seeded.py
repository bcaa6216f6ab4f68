"""Features fitted from validate's summary of the train rows (split_summary) equal features fitted by reading
the rows, and a feature the summary determines reads no row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.data.split_record import read_summary
from loopc.runtime.data.split_summary import SplitSummary
from loopc.runtime.features.fitting import StreamingFit, fit_stream
from loopc.runtime.features.transforms import FeatureError

ALL_TRAIN = {"method": "random", "seed": 0, "train": 1.0, "valid": 0.0, "test": 0.0}
COLUMNS = {"x": {"type": "float"}, "pos": {"type": "float"}, "n": {"type": "int"}, "flag": {"type": "bool"},
           "cat": {"type": "category"}, "s": {"type": "string"}, "one_null": {"type": "float"},
           "at_one": {"type": "float"}, "empty": {"type": "float"}}
SEEDED = {  # the summary determines each of these: no row is read for them
    "x_std": {"column": "x", "transforms": [{"kind": "standardize"}]},
    "x_raw": {"column": "x"},  # identity: its missing indicator comes from the summary's null count
    "n_mm": {"column": "n", "transforms": [{"kind": "minmax"}]},
    "pos_log": {"column": "pos", "transforms": [{"kind": "log", "offset": 0.5}, {"kind": "clip", "max": 3.0}]},
    "x_mean": {"column": "x", "transforms": [{"kind": "impute"}]},
    "flag_std": {"column": "flag", "transforms": [{"kind": "standardize"}]},
    "cat_1h": {"column": "cat", "transforms": [{"kind": "onehot", "max_categories": 3, "min_frequency": 2}]},
    "s_implicit": {"column": "s"},
    "s_hash": {"column": "s", "transforms": [{"kind": "hash", "buckets": 5}]},
    "one_null": {"column": "one_null"},  # a single null: the missing indicator
}
READ = {  # these need the rows
    "x_clip_std": {"column": "x", "transforms": [{"kind": "clip", "min": -1.0}, {"kind": "standardize"}]},
    "x_median": {"column": "x", "transforms": [{"kind": "impute", "strategy": "median"}]},
    "n_q": {"column": "n", "transforms": [{"kind": "bucketize", "quantiles": 4}]},
    "ratio": {"expr": "x / (n + 1)", "transforms": [{"kind": "standardize"}]},
    "n_1h": {"column": "n", "transforms": [{"kind": "onehot"}]},
    "flag_1h": {"column": "flag", "transforms": [{"kind": "onehot"}]},  # a bool's text is 0/1, not its counts' keys
}
PARTLY = {"x_imp_std": {"column": "x", "transforms": [{"kind": "impute"}, {"kind": "standardize"}]}}


def _table(rows: int = 5000) -> pa.Table:
    rng = np.random.default_rng(4)
    x = rng.normal(3.0, 2.0, rows)
    x[rng.random(rows) < 0.05] = np.nan
    return pa.table({
        "x": pa.array(x, mask=rng.random(rows) < 0.05),
        "pos": pa.array(rng.exponential(1.0, rows)),
        "n": pa.array(rng.integers(0, 9, rows)),
        "flag": pa.array(rng.random(rows) < 0.4),
        "cat": pa.array(rng.choice(["a", "b", "c", "d", "e"], rows, p=[0.4, 0.3, 0.2, 0.0998, 0.0002]),
                        mask=rng.random(rows) < 0.1),
        "s": pa.array(rng.choice(["u", "v"], rows)),
        "one_null": pa.array(rng.normal(0, 1, rows), mask=np.arange(rows) == 17),
        "at_one": pa.array(np.maximum(rng.normal(0, 1, rows), -1.0)),  # min exactly -1: log's offset 1 rejects it
        "empty": pa.nulls(rows, pa.float64()),
    })


def _summaries(tmp_path, table: pa.Table) -> dict[str, dict]:
    summary = SplitSummary(ALL_TRAIN, COLUMNS, table.num_rows)
    for start in range(0, table.num_rows, 1500):  # batches, as validate feeds them
        part = table.slice(start, 1500)
        train = summary.start(f"row group {start}", 0, part.num_rows, {})  # a random split: no key column
        for name in COLUMNS:
            train.add(name, part.column(name).combine_chunks())
    assert summary.write(tmp_path)
    record = read_summary(tmp_path, ALL_TRAIN)
    return {name: record.column(name) for name in COLUMNS}


def _by_name(fitted) -> dict:
    return {f.name: f for f in fitted.features}


def _close(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == pytest.approx(b, rel=1e-12, abs=1e-12)
    return a == b


def _fit(features: dict, summaries: dict | None, table: pa.Table) -> tuple:
    fit, read = StreamingFit(features, COLUMNS, table.num_rows, summaries=summaries), []
    while fit.pending:
        read.append(fit.columns)
        for start in range(0, table.num_rows, 700):
            fit.update(table.slice(start, 700).select(fit.columns))
        fit.end_pass()
    return fit.result(), read


def test_features_fitted_from_the_summary_equal_those_fitted_from_the_rows(tmp_path):
    table, features = _table(), {**SEEDED, **READ, **PARTLY}
    seeded, _ = _fit(features, _summaries(tmp_path, table), table)
    expected = fit_stream(lambda: [table], features, COLUMNS, table.num_rows)
    for name, feature in _by_name(expected).items():
        got = _by_name(seeded)[name]
        assert (got.text, got.missing_indicator) == (feature.text, feature.missing_indicator), name
        assert _close(list(got.steps), list(feature.steps)), name
    assert _by_name(expected)["x_raw"].missing_indicator  # the case the null count decides
    assert _by_name(expected)["cat_1h"].steps[0]["vocabulary"] == ["a", "b", "c"]


def test_a_feature_the_summary_determines_reads_no_row(tmp_path):
    table = _table()
    summaries = _summaries(tmp_path, table)
    _, read = _fit(SEEDED, summaries, table)
    assert read == []
    _, read = _fit({**SEEDED, **PARTLY}, summaries, table)
    assert read == [["x"]]  # impute's mean from the summary; standardize of the imputed values in one pass
    _, read = _fit({**SEEDED, "x_median": READ["x_median"]}, summaries, table)
    assert read[0] == ["x"]


@pytest.mark.parametrize("features", [
    {"x_log": {"column": "x", "transforms": [{"kind": "log"}]}},  # x holds values <= -1
    {"at_one_log": {"column": "at_one", "transforms": [{"kind": "log", "offset": 1.0}]}},  # min + offset == 0
    {"empty_mean": {"column": "empty", "transforms": [{"kind": "impute"}]}},  # no value to take the mean of
    {"s_std": {"column": "s", "transforms": [{"kind": "standardize"}]}},  # text cannot be standardized
], ids=["log", "log-at-zero", "impute-empty", "text-standardized"])
def test_a_feature_that_cannot_be_fitted_fails_with_the_same_error_as_from_the_rows(tmp_path, features):
    table = _table()
    with pytest.raises(FeatureError) as from_rows:
        fit_stream(lambda: [table], features, COLUMNS, table.num_rows)
    with pytest.raises(FeatureError) as seeded:
        _fit(features, _summaries(tmp_path, table), table)
    assert str(seeded.value) == str(from_rows.value)
    assert "feature '" in str(seeded.value)
