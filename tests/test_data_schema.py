"""Schema enforcement: casts to declared types and reports each corruption with column, rule, count, examples."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.runtime.data.checks import enforce_schema

COLUMNS = {
    "customer_id": {"type": "string", "nullable": False, "unique": True},
    "snapshot_date": {"type": "timestamp", "nullable": False},
    "tenure_months": {"type": "int", "nullable": False, "min": 0, "max": 600},
    "monthly_charges": {"type": "float", "nullable": False, "min": 0, "max": 1000},
    "contract": {"type": "category", "nullable": False, "allowed": ["monthly", "annual", "two_year"]},
    "churned": {"type": "bool", "nullable": False},
    "day": {"type": "date", "nullable": True},
}


def _clean(rows: int = 8) -> dict:
    return {
        "customer_id": [f"c{i}" for i in range(rows)],
        "snapshot_date": pa.array([dt.datetime(2025, 1, 1 + i) for i in range(rows)], pa.timestamp("ms")),
        "tenure_months": pa.array(list(range(rows)), pa.int32()),
        "monthly_charges": [10.0 + i for i in range(rows)],
        "contract": pa.array(["monthly", "annual"] * (rows // 2)).dictionary_encode(),
        "churned": [i % 2 == 0 for i in range(rows)],
        "day": [f"2025-02-{i + 1:02d}" for i in range(rows)],
    }


def _errors(data: dict) -> list:
    _, violations = enforce_schema(pa.table(data), COLUMNS, "customers")
    return [v for v in violations if v.severity == "error"]


def _only(data: dict):
    errors = _errors(data)
    assert len(errors) == 1, errors
    assert errors[0].dataset == "customers"
    return errors[0]


def test_clean_table_is_cast_to_declared_types():
    table, violations = enforce_schema(pa.table(_clean()), COLUMNS, "customers")
    assert violations == []
    assert table.schema.types == [
        pa.string(), pa.timestamp("us", tz="UTC"), pa.int64(), pa.float64(), pa.string(), pa.bool_(), pa.date32(),
    ]
    assert table.column("snapshot_date")[0].as_py() == dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)


def test_missing_column():
    data = _clean()
    del data["monthly_charges"]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("monthly_charges", "missing_column", 8)


def test_nulls_in_a_non_nullable_column():
    data = _clean()
    data["tenure_months"] = [1, None, 3, None, 5, 6, 7, 8]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("tenure_months", "nullable", 2)
    assert error.examples == ["row 1", "row 3"]


def test_nan_counts_as_null_in_a_float_column():
    data = _clean()
    data["monthly_charges"] = [1.0, np.nan, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("monthly_charges", "nullable", 1)


def test_changed_type_reports_uncastable_values():
    data = _clean()
    data["tenure_months"] = ["1", "2", "three", "4", "5 months", "6", "7", "three"]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("tenure_months", "type", 3)
    assert error.examples == ["three", "5 months"]
    assert "string" in error.message


def test_numeric_text_and_whole_floats_are_castable():
    data = _clean()
    data["tenure_months"] = [float(i) for i in range(8)]
    data["monthly_charges"] = [str(10 + i) for i in range(8)]
    table, violations = enforce_schema(pa.table(data), COLUMNS, "customers")
    assert violations == []
    assert table.column("tenure_months").type == pa.int64()


def test_fractional_floats_in_an_int_column_are_a_type_violation():
    data = _clean()
    data["tenure_months"] = [0.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.25]
    error = _only(data)
    assert (error.rule, error.count, error.examples) == ("type", 2, [1.5, 7.25])


def test_out_of_range_values():
    data = _clean()
    data["monthly_charges"] = [10.0, -5.0, 12.0, 2000.0, 14.0, 15.0, 16.0, 1000.0]
    error = _only(data)
    assert (error.column, error.rule, error.count, error.examples) == ("monthly_charges", "range", 2, [-5.0, 2000.0])


def test_values_outside_allowed():
    data = _clean()
    data["contract"] = ["monthly", "weekly", "annual", "weekly", "daily", "annual", "monthly", "monthly"]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("contract", "allowed", 3)
    assert error.examples == ["weekly", "daily"]


def test_duplicates_in_a_unique_column():
    data = _clean()
    data["customer_id"] = ["a", "b", "a", "c", "d", "b", "e", "a"]
    error = _only(data)
    assert (error.column, error.rule, error.count) == ("customer_id", "unique", 5)
    assert error.examples == ["a", "b"]


def test_extra_columns_are_kept_as_a_warning():
    data = {**_clean(), "note": ["x"] * 8}
    table, violations = enforce_schema(pa.table(data), COLUMNS, "customers")
    assert [(v.column, v.rule, v.severity) for v in violations] == [("note", "extra_column", "warning")]
    assert table.column_names[-1] == "note"


def test_timestamps_from_text_with_and_without_offsets():
    data = _clean(2)
    data["snapshot_date"] = ["2025-03-01T12:00:00+02:00", "2025-03-01 10:00:00"]
    table, violations = enforce_schema(pa.table(data), COLUMNS, "customers")
    assert violations == []
    assert table.column("snapshot_date").to_pylist() == [dt.datetime(2025, 3, 1, 10, tzinfo=dt.timezone.utc)] * 2


def test_many_problems_are_all_reported_with_at_most_five_examples():
    data = _clean(20)
    data["contract"] = [f"bad{i}" for i in range(20)]
    data["churned"] = [2] * 20
    errors = _errors(data)
    assert {(e.column, e.rule, e.count) for e in errors} == {("contract", "allowed", 20), ("churned", "type", 20)}
    assert len(next(e for e in errors if e.column == "contract").examples) == 5


@pytest.mark.parametrize("declared", ["int", "float", "bool", "string", "category", "timestamp", "date"])
def test_every_type_casts_nulls_through(declared):
    table = pa.table({"x": pa.nulls(3)})
    cast, violations = enforce_schema(table, {"x": {"type": declared}}, "d")
    assert violations == [] and cast.column("x").null_count == 3


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d", "e", "f"])), max_size=30))
def test_unique_rule_counts_every_row_of_a_repeated_value(values):
    _, violations = enforce_schema(pa.table({"k": pa.array(values, pa.string())}), {"k": {"type": "string", "unique": True}})
    expected = sum(1 for v in values if v is not None and values.count(v) > 1)
    assert sum(v.count for v in violations if v.rule == "unique") == expected


def test_large_integers_keep_every_digit_and_overflow_is_a_type_violation():
    big = 2**60 + 1
    table, violations = enforce_schema(pa.table({"n": pa.array([big, 2**64 - 1], pa.uint64())}), {"n": {"type": "int"}}, "d")
    assert table.column("n").to_pylist() == [big, None]
    assert [(v.rule, v.count) for v in violations] == [("type", 1)]


@pytest.mark.parametrize(
    ("values", "spec", "bad"),
    [
        ([1, 2, 3], {"type": "int", "allowed": [1, 2, "not a number"]}, [3]),
        ([True, False, True], {"type": "bool", "allowed": [True]}, [False]),
        ([0.5, 1.0, 2.0], {"type": "float", "allowed": [0.5, 1]}, [2.0]),
        (["a", "1", "x"], {"type": "category", "allowed": ["a", 1]}, ["x"]),
    ],
)
def test_allowed_values_compare_in_the_column_type(values, spec, bad):
    _, violations = enforce_schema(pa.table({"v": values}), {"v": spec}, "d")
    assert [(v.rule, v.examples) for v in violations] == [("allowed", bad)]


def test_nested_values_in_a_scalar_column_are_a_type_violation():
    table = pa.table({"tags": [[1], [2], None]})
    _, violations = enforce_schema(table, {"tags": {"type": "string"}}, "d")
    assert [(v.rule, v.count, v.examples) for v in violations] == [("type", 2, ["[1]", "[2]"])]


INF = float("inf")


@pytest.mark.parametrize(("spec", "values", "bad"), [
    ({"min": 0}, [1.0, INF, 2.0], ["inf"]),
    ({"max": 10}, [1.0, -INF, 2.0], ["-inf"]),
    ({"min": 0}, [1.0, -INF, 2.0], ["-inf"]),
    ({"max": 10}, [1.0, INF, 2.0], ["inf"]),
    ({"min": 0, "max": 10}, [INF, -INF, 2.0], ["inf", "-inf"]),
])
def test_an_infinite_value_is_outside_every_declared_range(spec, values, bad):
    _, violations = enforce_schema(pa.table({"x": values}), {"x": {"type": "float", **spec}}, "d")
    assert [(v.rule, v.count, v.examples) for v in violations] == [("range", len(bad), bad)]


def test_infinity_without_a_range_passes_and_a_one_sided_range_reads_half_open():
    _, violations = enforce_schema(pa.table({"x": [INF]}), {"x": {"type": "float"}}, "d")
    assert violations == []
    _, [low] = enforce_schema(pa.table({"x": [INF]}), {"x": {"type": "float", "min": 0}}, "d")
    _, [high] = enforce_schema(pa.table({"x": [-1.0]}), {"x": {"type": "float", "max": -2}}, "d")
    assert "fall outside [0, inf)" in low.message and "fall outside (-inf, -2]" in high.message


@pytest.mark.parametrize(("nullable", "rules"), [(True, []), (False, [("nullable", 1)])])
def test_nan_is_null_never_a_range_violation(nullable, rules):
    spec = {"type": "float", "min": 0, "max": 10, "nullable": nullable}
    table, violations = enforce_schema(pa.table({"x": [1.0, np.nan]}), {"x": spec}, "d")
    assert [(v.rule, v.count) for v in violations] == rules
    assert table.column("x").to_pylist() == [1.0, None]
