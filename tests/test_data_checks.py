"""Dataset checks (row count, null rate, freshness, expressions) and the validation report."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from loopc.runtime.data.checks import (
    ValidationFailed,
    enforce_schema,
    raise_for_report,
    render_report,
    run_checks,
    validation_report,
)
from loopc.runtime.data.sources import DataError

UTC = dt.timezone.utc
NOW = dt.datetime(2025, 6, 1, 12, tzinfo=UTC)


def _table() -> pa.Table:
    return pa.table({
        "total": [10.0, 20.0, None, 5.0, 40.0],
        "monthly": [5.0, 10.0, 10.0, 10.0, 10.0],
        "seen": pa.array([dt.datetime(2025, 6, 1, h) for h in range(5)], pa.timestamp("us", tz="UTC")),
    })


def _one(check: dict):
    [result] = run_checks(_table(), [check], NOW)
    return result


@pytest.mark.parametrize(("low", "high", "passed"), [(5, None, True), (6, None, False), (None, 4, False), (1, 5, True)])
def test_row_count(low, high, passed):
    result = _one({"kind": "row_count", "min": low, "max": high})
    assert (result.passed, result.observed) == (passed, 5)


@pytest.mark.parametrize(("limit", "passed"), [(0.2, True), (0.19, False)])
def test_null_rate(limit, passed):
    result = _one({"kind": "null_rate", "column": "total", "max": limit})
    assert (result.passed, result.observed, result.count, result.column) == (passed, 0.2, 1, "total")


def test_null_rate_of_a_missing_column_fails_with_its_name():
    result = _one({"kind": "null_rate", "column": "nope", "max": 0.5})
    assert not result.passed and "'nope' is missing" in result.message


@pytest.mark.parametrize(("max_age", "passed"), [("9h", True), ("7h", False), ("1d", True), ("30m", False)])
def test_freshness(max_age, passed):
    result = _one({"kind": "freshness", "column": "seen", "max_age": max_age})
    assert result.passed == passed
    assert result.observed == 8 * 3600


def test_freshness_accepts_a_naive_now_as_utc():
    [result] = run_checks(_table(), [{"kind": "freshness", "column": "seen", "max_age": "9h"}], NOW.replace(tzinfo=None))
    assert result.passed


@pytest.mark.parametrize(("fraction", "passed"), [(0.6, True), (0.61, False)])
def test_expression_with_min_fraction(fraction, passed):
    result = _one({"kind": "expression", "name": "consistent", "expr": "total >= monthly", "min_fraction": fraction})
    assert (result.passed, result.observed, result.count) == (passed, 0.6, 2)
    assert result.examples == [{"monthly": 10.0, "total": None}, {"monthly": 10.0, "total": 5.0}]


def test_expression_that_cannot_be_evaluated_fails_the_check():
    result = _one({"kind": "expression", "name": "bad", "expr": "unknown > 1", "min_fraction": 1.0})
    assert not result.passed and "unknown" in result.message


def test_unknown_check_kind_is_a_data_error():
    with pytest.raises(DataError, match="unknown check kind"):
        run_checks(_table(), [{"kind": "vibes"}], NOW)


def test_report_names_dataset_column_rule_counts_and_examples():
    raw = pa.table({"tenure": ["1", "x", "3"], "plan": ["a", "b", "zzz"]})
    columns = {"tenure": {"type": "int"}, "plan": {"type": "category", "allowed": ["a", "b"]}}
    _, violations = enforce_schema(raw, columns, "customers")
    results = run_checks(raw, [{"kind": "row_count", "min": 10}], NOW)
    report = validation_report("customers", violations, results, rows=3)
    assert json.loads(json.dumps(report)) == report
    assert (report["passed"], report["errors"]) == (False, 3)
    text = render_report(report)
    assert "dataset 'customers' (3 rows): validation FAILED with 3 error(s)" in text
    assert "column 'tenure' rule type: 1 row(s) cannot be read as int" in text and '["x"]' in text
    assert "column 'plan' rule allowed" in text and '["zzz"]' in text
    assert "check row_count: 3 rows, expected >= 10" in text
    with pytest.raises(ValidationFailed) as info:
        raise_for_report(report)
    assert info.value.report is report and "customers" in str(info.value)


def test_warnings_alone_pass():
    _, violations = enforce_schema(pa.table({"a": [1], "extra": [2]}), {"a": {"type": "int"}}, "d")
    report = validation_report("d", violations, [])
    assert (report["passed"], report["warnings"]) == (True, 1)
    raise_for_report(report)


def test_validate_dataset_reads_enforces_and_checks(tmp_path):
    import pyarrow.parquet as pq

    from loopc.runtime.data.checks import validate_dataset

    (tmp_path / "d").mkdir()
    pq.write_table(pa.table({"n": ["1", "2", "x"]}), tmp_path / "d" / "part.parquet")
    dataset = {"source": {"path": "d/*.parquet"}, "columns": {"n": {"type": "int", "nullable": False}},
               "checks": [{"kind": "row_count", "min": 3}]}
    table, report = validate_dataset("numbers", dataset, tmp_path, NOW)
    assert table.column("n").to_pylist() == [1, 2, None]
    assert (report["passed"], report["rows"]) == (False, 3)
    assert [(v["rule"], v["count"]) for v in report["violations"]] == [("type", 1)]
    assert report["checks"][0]["passed"]
