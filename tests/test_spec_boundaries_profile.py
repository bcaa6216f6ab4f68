"""The reference profile document, specified field by field on a table small enough to compute by hand."""

from __future__ import annotations

import datetime as dt
import decimal
import math

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.monitor.profile import (
    ProfileError,
    build_profile,
    categorical_sketch,
    column_kind,
    numeric_values,
    prediction_values,
)


def test_a_small_profile_equals_the_hand_computed_document():
    table = pa.table({"x": pa.array([1.0, None, 3.0, math.nan]), "c": pa.array(["a", "b", "a", None])})
    profile = build_profile(table, {"x": {"type": "float"}, "c": {"type": "category"}}, None, quantiles=5, psi_bins=2)
    assert profile == {
        "format": 1, "rows": 4, "predictions": None,
        "columns": {
            "c": {"kind": "categorical", "count": 3, "nulls": 1, "null_rate": 0.25, "categories": {"a": 2, "b": 1},
                  "other": 0, "type": "category"},
            "x": {"kind": "numeric", "count": 2, "nulls": 2, "null_rate": 0.5, "mean": 2.0, "std": 1.0, "min": 1.0,
                  "max": 3.0, "points": [1.0, 3.0], "le": [1, 2], "lt": [0, 1], "psi_edges": [1.0],
                  "psi_ref": [0.5, 0.5], "type": "float"},
        },
    }  # fmt: skip


def test_an_all_null_numeric_column_has_an_empty_sketch():
    profile = build_profile(pa.table({"x": pa.array([None, None], pa.float64())}), {"x": {}}, None)
    assert profile["columns"]["x"] == {
        "kind": "numeric", "count": 0, "nulls": 2, "null_rate": 1.0, "mean": None, "std": None, "min": None,
        "max": None, "points": [], "le": [], "lt": [], "psi_edges": [], "psi_ref": [], "type": "double"}  # fmt: skip
    empty = build_profile(pa.table({"x": pa.array([], pa.float64())}), {"x": {}}, None)["columns"]["x"]
    assert (empty["null_rate"], empty["count"]) == (0.0, 0)


def test_the_default_sketch_resolution_and_prediction_profiles():
    rng = np.random.default_rng(1)
    table = pa.table({"x": rng.normal(size=5000)})
    scores = build_profile(table, {"x": {"type": "float"}}, rng.uniform(size=5000))
    assert len(scores["columns"]["x"]["points"]) == 1001 and len(scores["columns"]["x"]["psi_ref"]) == 10
    assert scores["predictions"]["type"] == "score" and len(scores["predictions"]["points"]) == 1001
    assert len(scores["predictions"]["psi_ref"]) == 10
    with_nan = build_profile(table.slice(0, 3), {"x": {}}, np.array([0.5, math.nan, 0.25]))
    assert (with_nan["predictions"]["count"], with_nan["predictions"]["nulls"]) == (2, 1)


def test_prediction_values_are_scores_or_the_argmax_class():
    values, kind = prediction_values(np.array([[0.2, 0.8], [0.9, 0.1]]))
    assert (values.tolist(), kind) == ([1.0, 0.0], "class")
    values, kind = prediction_values(np.array([[0.2, 0.7, 0.1]]))
    assert values.dtype == np.float64 and (values.tolist(), kind) == ([1.0], "class")
    values, kind = prediction_values(np.array([[0.25], [0.75]]))
    assert (values.tolist(), kind) == ([0.25, 0.75], "score")
    values, kind = prediction_values([1, 0])
    assert values.dtype == np.float64 and kind == "score"


@pytest.mark.parametrize(
    ("spec", "arrow", "kind"),
    [
        ({"type": "int"}, pa.string(), "numeric"), ({"type": "date"}, pa.string(), "numeric"),
        ({"type": "bool"}, pa.int64(), "categorical"), ({"type": "string"}, pa.int64(), "categorical"),
        ({}, pa.int32(), "numeric"), ({}, pa.float32(), "numeric"), ({}, pa.timestamp("us"), "numeric"),
        ({}, pa.bool_(), "categorical"), ({}, pa.string(), "categorical"), ({"type": None}, pa.date32(), "numeric"),
    ],
)
def test_column_kind_follows_the_declared_type_then_the_arrow_type(spec, arrow, kind):
    assert column_kind("col", spec, arrow) == kind


def test_an_unprofilable_declared_type_is_an_error_listing_the_types():
    with pytest.raises(ProfileError) as error:
        column_kind("col", {"type": "blob"}, pa.binary())
    assert str(error.value) == ("column 'col': type 'blob' cannot be profiled; use one of int, float, timestamp, "
                                "date, bool, string, category")  # fmt: skip


def test_numeric_values_of_every_numeric_arrow_type():
    assert numeric_values(pa.array([decimal.Decimal("1.5"), None]))[0].tolist() == [1.5]
    assert numeric_values(pa.array([True, False]))[0].tolist() == [1.0, 0.0]
    stamp = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    assert numeric_values(pa.array([stamp], pa.timestamp("us", tz="UTC")))[0].tolist() == [stamp.timestamp() * 1e6]
    assert numeric_values(pa.array([dt.date(1970, 1, 3)], pa.date32()))[0].tolist() == [2.0]
    values, nulls = numeric_values(pa.chunked_array([[1, None], [3]]))
    assert values.dtype == np.float64 and values.tolist() == [1.0, 3.0] and nulls == 1
    assert numeric_values(pa.array([1.0, 2.0]))[1] == 0
    with pytest.raises(ProfileError) as error:
        numeric_values(pa.array(["a"]), "col")
    assert str(error.value) == "column 'col' holds string, not numbers; fix the data or declare the column's type"
    with pytest.raises(ProfileError, match="^column '\\?' holds"):
        numeric_values(pa.array(["a"]))


def test_categories_keep_the_most_frequent_with_ties_by_name_and_sum_the_rest_in_other():
    sketch = categorical_sketch({"b": 2, "a": 2, "c": 5, "d": 1}, 3, max_categories=2)
    assert sketch == {"kind": "categorical", "count": 10, "nulls": 3, "null_rate": 3 / 13,
                      "categories": {"a": 2, "c": 5}, "other": 3}  # fmt: skip


def test_booleans_and_dictionary_columns_are_counted_by_key():
    table = pa.table({"b": [True, False, True], "d": pa.array(["x", "y", "x"]).dictionary_encode()})
    profile = build_profile(table, {"b": {"type": "bool"}, "d": {"type": "category"}}, None)
    assert profile["columns"]["b"]["categories"] == {"false": 1, "true": 2}
    assert profile["columns"]["d"]["categories"] == {"x": 2, "y": 1}


def test_profiling_a_column_the_table_lacks_is_an_error():
    with pytest.raises(ProfileError) as error:
        build_profile(pa.table({"a": [1]}), {"z": {}, "y": {}}, None)
    assert str(error.value) == "columns y, z are not in the table; columns are: a"
