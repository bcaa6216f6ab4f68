"""cast_column: a float column keeps its buffers when it holds no NaN, and every NaN becomes null otherwise."""

from __future__ import annotations

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
