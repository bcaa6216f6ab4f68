"""Reference profiles specified where mutation testing showed gaps: options reach every sketch, nulls add up
over batches, and a sketch whose second pass saw other rows says so."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.monitor.profile import NumericColumn, ProfileError, ProfileSketch, build_profile


def test_build_profile_passes_every_option_to_the_columns_and_the_predictions():
    rng = np.random.default_rng(0)
    table = pa.table({"x": rng.normal(size=500), "c": pa.array(["a", "b", "c", "d"] * 125)})
    columns = {"x": {"type": "float"}, "c": {"type": "category"}}
    profile = build_profile(table, columns, rng.random(500), quantiles=11, psi_bins=4, max_categories=2,
                            sample_rows=50)
    x, c, pred = profile["columns"]["x"], profile["columns"]["c"], profile["predictions"]
    assert len(x["psi_edges"]) == 3 and len(x["psi_ref"]) == 4  # psi_bins
    assert len(x["points"]) <= 13  # 11 quantile points of a 50-row sample, the min and the max
    assert len(c["categories"]) == 2 and c["other"] == 250  # max_categories
    assert len(pred["psi_edges"]) == 3 and len(pred["points"]) <= 13  # the predictions get the same options


def test_nulls_are_counted_over_every_batch():
    sketch = ProfileSketch({"x": {"type": "float"}, "c": {"type": "category"}}, 6)
    for part in ({"x": [1.0, None, 3.0], "c": [None, "a", None]}, {"x": [None, 5.0, None], "c": ["b", None, "a"]}):
        sketch.observe(pa.table({"x": pa.array(part["x"], pa.float64()), "c": pa.array(part["c"], pa.string())}))
    for part in ([1.0, None, 3.0], [None, 5.0, None]):
        sketch.count(pa.table({"x": pa.array(part, pa.float64())}))
    sketches = sketch.sketches()
    assert (sketches["x"]["nulls"], sketches["x"]["count"]) == (3, 3)
    assert (sketches["c"]["nulls"], sketches["c"]["categories"]) == (3, {"a": 2, "b": 1})


@pytest.mark.parametrize("second_pass", [None, [1.0, 2.0]])
def test_a_second_pass_over_other_rows_is_an_error_naming_both_counts(second_pass):
    column = NumericColumn()
    column.observe(np.array([1.0, 2.0, 3.0]), 0, np.array([1.0, 2.0, 3.0]))
    if second_pass is not None:
        column.count(np.array(second_pass))
    counted = 0 if second_pass is None else len(second_pass)
    with pytest.raises(ProfileError) as error:
        column.sketch()
    assert str(error.value) == (f"a numeric sketch counted {counted} values in its second pass, 3 in its first: "
                                "the rows changed while they were read")


def test_a_column_whose_sampled_rows_are_all_null_places_its_points_at_its_min_and_max():
    values = pa.array([None if i % 2 == 0 else float(i) for i in range(10)], pa.float64())  # rows 0, 2, 4... sampled
    profile = build_profile(pa.table({"x": values}), {"x": {"type": "float"}}, sample_rows=5)
    x = profile["columns"]["x"]
    assert (x["points"], x["le"], x["nulls"]) == ([1.0, 9.0], [1, 5], 5)


def test_a_missing_profiled_column_names_what_the_table_has():
    with pytest.raises(ProfileError) as error:
        build_profile(pa.table({"a": [1.0], "b": [2.0]}), {"z": {"type": "float"}})
    assert str(error.value) == "columns z are not in the table; columns are: a, b"


def test_point_counts_are_integers_in_the_sketch_as_in_the_counter():
    """Counts are exact integers: a float counter would write 12.0 for 12 into every stored profile."""
    from loopc.runtime.monitor.profile import PointCounts

    values = np.array([0.5, 1.0, 1.0, 2.0, 3.5, 7.0])
    counter = PointCounts(np.array([1.0, 3.5]), 0.5, 7.0, cells=4)
    counter.add(values)
    le, lt = counter.counts()
    assert (le.tolist(), lt.tolist()) == ([3, 5], [1, 4])
    assert le.dtype == lt.dtype == np.int64 and counter.below.dtype == counter.at_or_below.dtype == np.int64
    column = NumericColumn(quantiles=3, psi_bins=2)
    column.observe(values, 0, values)
    column.count(values)
    sketch = column.sketch()
    assert all(type(v) is int for v in [*sketch["le"], *sketch["lt"]]) and sketch["le"][-1] == len(values)
