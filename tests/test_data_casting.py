"""cast_column: a float column keeps its buffers when it holds no NaN, and every NaN becomes null otherwise."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.runtime.data.casting import cast_column, examples

FLOATS = st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=40)


@settings(deadline=None)  # no timed tests: a loaded machine made the first example take 840 ms
@given(FLOATS, st.integers(0, 5))
def test_a_float_column_cast_to_float_has_every_nan_null_and_nothing_else_changed(values, offset):
    array = pa.array([1.0] * offset + values, pa.float64()).slice(offset)  # an offset into the buffers too
    cast, bad = cast_column(pa.chunked_array([array]), "float")
    expected = [None if v is None or math.isnan(v) else v for v in values]
    assert cast.to_pylist() == expected
    assert not bad.any()


def test_a_float_column_without_nan_is_returned_without_a_copy():
    array = pa.array(np.arange(1000, dtype=np.float64))
    cast, _ = cast_column(pa.chunked_array([array]), "float")
    assert cast.buffers()[1].address == array.buffers()[1].address


def test_infinities_of_both_signs_are_kept_and_garbage_under_a_null_is_not_a_nan():
    data = pa.py_buffer(np.array([np.inf, -np.inf, np.nan, 2.0]).tobytes())
    validity = pa.array([True, True, False, True]).buffers()[1]
    array = pa.Array.from_buffers(pa.float64(), 4, [validity, data])  # the null slot holds a NaN
    cast, _ = cast_column(array, "float")
    assert cast.to_pylist() == [math.inf, -math.inf, None, 2.0]
    assert pc.sum(pc.is_null(cast)).as_py() == 1


@pytest.mark.parametrize("ctype, array", [
    ("int", pa.array([1, None, -3], pa.int64())),
    ("bool", pa.array([True, None, False])),
    ("string", pa.array(["a", None, "c"])),
    ("timestamp", pa.array([0, None, 5], pa.timestamp("us", tz="UTC"))),
    ("date", pa.array([0, None, 5], pa.date32())),
], ids=["int", "bool", "string", "timestamp", "date"])
def test_a_column_already_of_its_declared_type_is_returned_as_it_is_with_nothing_bad(ctype, array):
    cast, bad = cast_column(pa.chunked_array([array]), ctype)
    assert cast.type == array.type and bad.tolist() == [False] * 3
    assert [b.address for b in cast.buffers()] == [b.address for b in array.buffers()]  # no copy


def test_the_no_bad_rows_mask_is_read_only_and_as_long_as_the_column():
    _, short = cast_column(pa.array([1.0]), "float")
    _, long = cast_column(pa.array(np.zeros(2000)), "float")
    assert (len(short), len(long), long.any()) == (1, 2000, False)
    with pytest.raises(ValueError, match="read-only"):
        long[0] = True


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_nanosecond_timestamps_as_pandas_writes_them_are_floored_to_microseconds_not_bad(tz):
    stamps = pa.array([1704067200123456789, None, -1], pa.timestamp("ns", tz))
    cast, bad = cast_column(stamps, "timestamp")
    assert not bad.any()
    assert cast.type == pa.timestamp("us", "UTC")
    assert pc.cast(cast, pa.int64()).to_pylist() == [1704067200123456, None, -1]  # floored, before 1970 too


def test_examples_of_values_without_a_python_form_are_shown_as_text():
    stamps = pa.array([1704067200123456789, 5], pa.timestamp("ns"))
    assert examples(stamps, np.array([True, False])) == ["2024-01-01 00:00:00.123456789"]


def test_zoned_nanosecond_timestamps_at_an_ambiguous_local_time_are_floored_not_bad():
    # 00:30Z on 2026-10-25 is 02:30 in Berlin, a wall time that happens twice: flooring in local time raised
    stamps = pa.array([1792888200123456789, 1792884600123456789], pa.timestamp("ns", "Europe/Berlin"))
    cast, bad = cast_column(stamps, "timestamp")
    assert not bad.any()
    assert pc.cast(cast, pa.int64()).to_pylist() == [1792888200123456, 1792884600123456]


def test_the_no_bad_rows_mask_is_as_long_as_asked_even_when_another_thread_swaps_the_shared_one(monkeypatch):
    from loopc.runtime.data import casting

    class Swapped(list):
        """The shared slot as a thread sees it when another one stores a shorter mask right after this one's."""

        def __setitem__(self, index, value):
            super().__setitem__(index, value)
            super().__setitem__(index, np.zeros(1, bool))

    monkeypatch.setattr(casting, "_NOTHING", Swapped([np.zeros(0, bool)]))
    assert len(casting.nothing_bad(100)) == 100


@pytest.mark.parametrize("ctype", ["timestamp", "date"])
def test_an_iso_shaped_time_that_does_not_exist_is_bad_alone_not_every_row_beside_it(ctype):
    text = pa.array(["2026-01-02T03:04:05", "2026-02-30", None, "2026-01-02T03:04:05+01:00", "2026-13-01T00:00:00Z",
                     "2026-01-02 00:00:00.123456789", "2026-01-03"])
    cast, bad = cast_column(text, ctype)
    assert bad.tolist() == [False, True, False, False, True, True, False]
    expected = cast_column(pa.array(["2026-01-02T03:04:05", "2026-01-02T03:04:05+01:00", "2026-01-03"]), ctype)[0]
    assert cast.filter(pa.array([not b for b in bad.tolist()])).drop_null().equals(expected)


def test_text_finer_than_microseconds_is_refused_by_its_shape_without_casting_each_value(monkeypatch):
    from loopc.runtime.data import casting

    calls, cast_or_null = [], casting._cast_or_null
    monkeypatch.setattr(casting, "_cast_or_null", lambda text, target: calls.append(len(text)) or cast_or_null(text, target))
    _, bad = cast_column(pa.array(["2026-01-02 00:00:00.123456789"] * 1000), "timestamp")
    assert bad.all() and calls == [1000, 1000]  # one cast for the zoned rows, one for the naive: no halving


def _alone(value: str, ctype: str):
    """``value`` cast by itself: a value the whole column's cast must judge exactly so."""
    return cast_column(pa.array([value]), ctype)


ISO_PARTS = st.tuples(st.integers(0, 9999), st.integers(0, 14), st.integers(0, 32), st.integers(0, 25),
                      st.integers(0, 61), st.integers(0, 61), st.sampled_from(["", "Z", "+05:30", "-2400", "+23:60"]))


@settings(deadline=None)
@given(st.lists(ISO_PARTS, min_size=1, max_size=20), st.sampled_from(["timestamp", "date"]))
def test_iso_text_out_of_range_is_bad_value_by_value_exactly_as_arrow_casts_each_alone(parts, ctype):
    text = [f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{zone}" for y, mo, d, h, mi, s, zone in parts]
    cast, bad = cast_column(pa.array(text), ctype)
    alone = [_alone(value, ctype) for value in text]
    assert bad.tolist() == [b[1][0] for b in alone]
    assert cast.equals(pa.concat_arrays([c for c, _ in alone]))  # year 0 has no Python value: compared in Arrow


def _counting_casts(monkeypatch) -> list[int]:
    """The lengths of the arrays the halving cast is given (it calls itself on each half)."""
    from loopc.runtime.data import casting

    calls, halving = [], casting._halving
    monkeypatch.setattr(casting, "_halving", lambda text, target: calls.append(len(text)) or halving(text, target))
    return calls


def test_a_column_of_days_that_do_not_exist_is_found_bad_in_one_pass_not_by_halving(monkeypatch):
    calls = _counting_casts(monkeypatch)
    refused = ["2026-02-30T10:00:00", "2026-13-01", "2026-01-01 24:00", "2026-01-01 23:60", "2026-01-01 23:59:60",
               "2026-01-01T00:00+24:00", "2026-01-01T00:00-2360"]  # each one Arrow's cast refuses
    _, bad = cast_column(pa.array(refused * 1000), "timestamp")
    assert bad.all() and calls == [7000]  # the naive rows' cast failed: one more cast after the day check, no halving


def test_the_halving_fallback_nulls_only_the_values_the_cast_refuses():
    from loopc.runtime.data.casting import _halving

    text = pa.array(["2026-01-01", "2026-02-30", None, "2026-01-02"])
    assert _halving(text, pa.timestamp("us")).is_valid().to_pylist() == [True, False, False, True]


def test_the_days_are_checked_only_when_the_cast_fails(monkeypatch):
    from loopc.runtime.data import casting

    checked = []
    real_day = casting._real_day
    monkeypatch.setattr(casting, "_real_day", lambda text: checked.append(len(text)) or real_day(text))
    assert not cast_column(pa.array([GOOD] * 100), "timestamp")[1].any() and checked == []
    assert cast_column(pa.array([GOOD] * 99 + ["2026-02-29"]), "date")[1].tolist() == [False] * 99 + [True]
    assert checked == [100]  # the naive rows (the zoned cast of all-null text succeeded)


def _validate_csv(root, when: list[str]) -> str:
    """The rendered report of validating a real CSV file of ``when`` times (a timestamp column)."""
    import datetime as dt

    import pyarrow.csv as pacsv

    from loopc.runtime.data import batchwise
    from loopc.runtime.data.checks import render_report
    from loopc.runtime.data.snapshot import take_snapshot

    (root / "data").mkdir()
    pacsv.write_csv(pa.table({"n": list(range(len(when))), "when": when}), root / "data" / "t.csv")
    dataset = {"source": {"path": "data/t.csv"}, "columns": {"n": {"type": "int"}, "when": {"type": "timestamp"}}}
    snapshot = take_snapshot(dataset["source"], root, content=False)
    return render_report(batchwise.validate_source(snapshot, "d", dataset, dt.datetime(2026, 1, 1)).report)


GOOD = "2026-01-02T03:04:05"


@pytest.mark.parametrize("bad_rows, shown", [
    ([2500], ["2026-02-30T00:00:00"]),  # one bad value
    (list(range(5000)), ["2026-02-30T00:00:00"]),  # every value bad (one distinct value shown)
    ([4999], ["2026-02-30T00:00:00"]),  # the last row of the file's last batch
])
def test_a_csv_time_that_does_not_exist_is_reported_with_its_column_count_and_value(tmp_path, bad_rows, shown):
    when = [GOOD] * 5000
    for row in bad_rows:
        when[row] = "2026-02-30T00:00:00"
    report = _validate_csv(tmp_path, when)
    assert (f"error: column 'when' rule type: {len(bad_rows)} row(s) cannot be read as timestamp (found string); "
            f"examples: {json.dumps(shown)}") in report


def test_a_bad_time_in_the_last_row_of_a_batch_is_that_row_alone():
    text = pa.array([GOOD] * 1023 + ["2026-04-31T00:00:00"])
    cast, bad = cast_column(text, "timestamp")
    assert np.flatnonzero(bad).tolist() == [1023] and cast.null_count == 1
    assert examples(text, bad) == ["2026-04-31T00:00:00"]


def test_text_infinities_are_read_as_a_float_column_reads_them_and_other_words_are_bad():
    """A CSV written by Arrow or pandas spells infinities "inf" and "-inf"; a Parquet float column keeps them."""
    text = pa.array(["inf", "-inf", "+Infinity", "INF", " -inf ", "1e3", "infx", "in", "-", "nan"])
    cast, bad = cast_column(text, "float")
    assert cast.to_pylist()[:6] == [math.inf, -math.inf, math.inf, math.inf, -math.inf, 1000.0]
    assert bad.tolist() == [False] * 6 + [True] * 4  # "nan" is a null spelling of the CSV reader, not a value
    assert cast_column(pa.array(["inf"]), "int")[1].tolist() == [True]


def test_a_float_column_of_both_infinities_or_huge_values_is_cast_without_a_numpy_warning():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would reach the step's log as noise
        cast, bad = cast_column(pa.array([np.inf, -np.inf, 1e308, 1e308, 2.0]), "float")
    assert cast.to_pylist() == [math.inf, -math.inf, 1e308, 1e308, 2.0] and not bad.any()


def test_integer_text_is_read_as_int_with_a_sign_and_as_whole_decimals_as_a_float_column_is():
    cast, bad = cast_column(pa.array(["2.0", "3.5", "1e3", "-0.0", "inf", "7.", "1.00", None, "+5", " 007 ", "x"]),
                            "int")
    assert cast.to_pylist() == [2, None, 1000, 0, None, 7, 1, None, 5, 7, None]
    assert bad.tolist() == [False, True, False, False, True, False, False, False, False, False, True]
    assert cast.type == pa.int64()


def test_an_integer_beyond_int64_is_bad_alone_not_every_row_beside_it():
    text = ["1", "99999999999999999999", "-3", "9223372036854775807", "-9223372036854775808.0", "9223372036854775808"]
    cast, bad = cast_column(pa.array(text), "int")
    assert cast.to_pylist() == [1, None, -3, 2**63 - 1, -2**63, None]
    assert bad.tolist() == [False, True, False, False, False, True]


def test_a_csv_int_column_with_gaps_as_pandas_writes_it_validates_clean(tmp_path):
    import datetime as dt

    from loopc.runtime.data import batchwise
    from loopc.runtime.data.snapshot import take_snapshot

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("n,k\n1.0,a\n,b\n-3.0,c\n+4,d\n")
    dataset = {"source": {"path": "data/t.csv"}, "columns": {"n": {"type": "int"}, "k": {"type": "string"}}}
    snapshot = take_snapshot(dataset["source"], tmp_path, content=False)
    validated = batchwise.validate_source(snapshot, "d", dataset, dt.datetime(2026, 1, 1), table=tmp_path / "v.parquet")
    assert validated.report["passed"] and not validated.report["errors"]
    import pyarrow.parquet as pq

    assert pq.read_table(tmp_path / "v.parquet").column("n").to_pylist() == [1, None, -3, 4]


def test_nan_in_a_float_column_is_null_and_only_there():
    cast, bad = cast_column(pa.array([1.5, float("nan"), None, -0.0, float("inf")]), "float")
    assert cast.to_pylist() == [1.5, None, None, -0.0, float("inf")] and not bad.any()
    cast, bad = cast_column(pa.array([1, 2], pa.int32()), "float")
    assert cast.to_pylist() == [1.0, 2.0] and cast.type == pa.float64() and not bad.any()


def test_an_integer_beyond_float64_precision_is_read_as_the_nearest_float_not_bad():
    cast, bad = cast_column(pa.array([2**53 + 1, -(2**60) - 1]), "float")
    assert cast.to_pylist() == [float(2**53), -float(2**60)] and not bad.any()


def test_numbers_read_as_bool_are_zero_and_one_only():
    cast, bad = cast_column(pa.array([0.0, 1.0, 2.0, -0.0, None, 0.5]), "bool")
    assert cast.to_pylist() == [False, True, None, False, None, None]
    assert bad.tolist() == [False, False, True, False, False, True]


def test_floats_read_as_int_are_whole_and_below_two_to_the_62():
    values = [2.0**62 - 1024, 2.0**62, -(2.0**62), 3.0, 3.5, float("nan"), None, -0.0]
    cast, bad = cast_column(pa.array(values), "int")
    assert cast.to_pylist() == [2**62 - 1024, None, None, 3, None, None, None, 0]
    assert bad.tolist() == [False, True, True, False, True, True, False, False]


@pytest.mark.parametrize("type_", [pa.uint8(), pa.int8(), pa.int32(), pa.uint32()])
def test_narrow_integers_are_read_as_int64_exactly(type_):
    cast, bad = cast_column(pa.array([0, 7, None, 100], type_), "int")
    assert cast.type == pa.int64() and cast.to_pylist() == [0, 7, None, 100] and not bad.any()
    assert bad.dtype == np.bool_


def test_uint64_beyond_int64_is_bad_alone():
    cast, bad = cast_column(pa.array([0, 2**63 - 1, 2**63, None, 2**64 - 1], pa.uint64()), "int")
    assert cast.to_pylist() == [0, 2**63 - 1, None, None, None]
    assert bad.tolist() == [False, False, True, False, True] and bad.dtype == np.bool_


def test_bool_text_is_read_in_any_case_and_other_words_are_bad():
    text = ["true", "FALSE", " Yes ", "no", "t", "F", "1", "0", "2", "maybe", None]
    cast, bad = cast_column(pa.array(text), "bool")
    assert cast.to_pylist() == [True, False, True, False, True, False, True, False, None, None, None]
    assert bad.tolist() == [False] * 8 + [True, True, False]


def test_day_text_is_read_as_a_date_and_as_a_timestamp_at_midnight_utc():
    import datetime as dt

    cast, bad = cast_column(pa.array(["2026-01-02", "2026-01-02T23:59:59", None]), "date")
    assert cast.type == pa.date32() and cast.to_pylist() == [dt.date(2026, 1, 2)] * 2 + [None] and not bad.any()
    cast, bad = cast_column(pa.array(["2026-01-02"]), "timestamp")
    assert cast.to_pylist() == [dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)] and not bad.any()
