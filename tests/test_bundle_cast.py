"""The bundle's standalone input_cast.py casts exactly as loopc's casting.cast_column (then table_columns, as
the features read it) over the same values: a dict of columns (NaN is a null) and pyarrow record batches
(NaN is a value); where loopc finds a value it cannot cast, the standalone cast refuses naming the column."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loopc.runtime.data.casting import ARROW_TYPES, cast_column
from loopc.runtime.export import input_cast
from loopc.runtime.export.bundle import write_bundle
from loopc.runtime.export.bundle_score import BundleError, load, table_columns
from tests.test_bundle_replay import artifact
from tests.test_bundle_replay import table as replay_table

TYPES = sorted(ARROW_TYPES)
SPACE = st.sampled_from(["", " ", "\t", "  "])
NUMBER_TEXT = st.one_of(st.integers(-10**20, 10**20).map(str), st.floats(allow_nan=False).map(repr),
                        st.from_regex(r"[+-]?(\d{1,4}\.?\d{0,3}|\.\d{1,3})([eE][+-]?\d{1,3})?", fullmatch=True),
                        st.sampled_from(["2.0", "+5", "-0.0", "7.", "1e3", "inf", "-Infinity", "1.00", "1e999",
                                         "9223372036854775807", "9223372036854775808", "-9223372036854775808.0"]))
BOOL_TEXT = st.sampled_from(["true", "FALSE", "Yes", "no", "t", "F", "1", "0", "2", "maybe"])
ISO_TEXT = st.builds(
    lambda stamp, sep, precision, offset: stamp.isoformat(sep=sep, timespec=precision) + offset,
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)), st.sampled_from("T "),
    st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds"]),
    st.sampled_from(["", "Z", "+05:30", "-0800", "+00:00"])) | st.dates().map(str)
TEXT = st.tuples(SPACE, NUMBER_TEXT | BOOL_TEXT | ISO_TEXT | st.text("0123456789+-.eE:TZ tfa", max_size=12),
                 SPACE).map("".join)
VALUES = st.one_of(
    st.lists(st.none() | st.integers(-2**63, 2**63 - 1), max_size=8),
    st.lists(st.none() | st.floats() | st.sampled_from([0.0, -0.0, 1.0, 3.0, 2.0**62, 1e-7, 1e10]), max_size=8),
    st.lists(st.none() | st.booleans(), max_size=8),
    st.lists(st.none() | TEXT, max_size=8),
    st.lists(st.none() | st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
             max_size=8),
    st.lists(st.none() | st.datetimes(timezones=st.just(dt.timezone(dt.timedelta(hours=-3))),
                                      min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30)),
             max_size=8),
    st.lists(st.none() | st.dates(), max_size=8),
)


def loopc_cast(array: pa.Array, ctype: str):
    """What loopc's scoring feeds the features: cast_column, then table_columns; None when it refuses."""
    cast, bad = cast_column(array, ctype)
    if bad.any():
        return None
    return table_columns(pa.table({"x": cast}), {"columns": [{"name": "x"}]})["x"]


def assert_same(got, expected) -> None:
    if isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(got, expected)  # NaN equals NaN; exact otherwise
        assert got.dtype == np.float64
    else:
        assert got == expected


def standalone(classified: tuple, ctype: str):
    try:
        return input_cast.cast_values("x", *classified, ctype)
    except input_cast.CastError as exc:
        assert str(exc).startswith("column 'x' has ") and f"cannot be read as {ctype}" in str(exc)
        return None


@settings(max_examples=400, deadline=None)
@given(VALUES, st.sampled_from(TYPES))
def test_a_dict_column_is_cast_as_loopc_casts_it(values, ctype):
    try:
        array = pa.array(values, from_pandas=True)  # a dict column's NaN is a null
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        assume(False)  # values pyarrow cannot hold: loopc cannot read them either
    expected = loopc_cast(array, ctype)
    assume(not (ctype in ("string", "category") and pa.types.is_temporal(array.type)))  # times as text: not cast
    got = standalone(input_cast.classify("x", values), ctype)
    if expected is None or got is None:
        assert got is None and expected is None, (got, expected)
    else:
        assert_same(got, expected)


@settings(max_examples=400, deadline=None)
@given(VALUES, st.sampled_from(TYPES), st.booleans())
def test_a_record_batch_column_is_cast_as_loopc_casts_it(values, ctype, dictionary):
    try:
        array = pa.array(values)  # a NaN stays a value, as in a Parquet file
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        assume(False)
    assume(not (ctype in ("string", "category") and pa.types.is_temporal(array.type)))
    expected = loopc_cast(array, ctype)
    if dictionary and not pa.types.is_temporal(array.type) and not pa.types.is_null(array.type):
        array = array.dictionary_encode()
    got = standalone(input_cast.arrow_classify(array), ctype)
    if expected is None or got is None:
        assert got is None and expected is None, (got, expected)
    else:
        assert_same(got, expected)


@pytest.mark.parametrize("value", [0.1, 1e-5, 1e-6, 1e-7, 1.5e-6, 123456789.0, 1e9, 1e10, 1.5e10, 1e15, 1e20, 1e21,
                                   -0.0, 0.0, -2.5e-300, 1.7976931348623157e308, 5e-324, float("nan"), float("-inf")])
def test_floats_read_as_text_are_written_as_pyarrow_writes_them(value):
    assert input_cast.float_text(value) == pa.array([value]).cast(pa.string())[0].as_py()
    with np.errstate(over="ignore"):
        single = np.float32(value)
    if np.isfinite(single) or np.isnan(single):
        assert input_cast.float_text(single) == pa.array([single], pa.float32()).cast(pa.string())[0].as_py()


def test_a_column_mixing_kinds_is_refused_naming_it():
    with pytest.raises(input_cast.CastError, match="column 'plan' mixes int and text values"):
        input_cast.classify("plan", [1, "a", None])


def test_examples_name_each_bad_value_once():
    with pytest.raises(input_cast.CastError) as caught:
        input_cast.cast_values("n", *input_cast.classify("n", ["x", "1", "x", "y"]), "int")
    assert str(caught.value) == ("column 'n' has 3 value(s) that cannot be read as int, the type the model was "
                                 "trained on (e.g. 'x', 'y')")


DECLARED = {"age": {"type": "int"}, "income": {"type": "float"}, "zone": {"type": "category"}}


def test_the_loaded_bundle_scores_retyped_columns_as_typed_ones(tmp_path):
    folder, *_ = artifact(tmp_path / "a", "binary_classification", None)
    model = load(write_bundle(folder, tmp_path / "bundle", columns=DECLARED))
    rows = replay_table(120, 7)
    typed = model.predict({c: rows.column(c).to_pylist() for c in rows.column_names})["score"]
    text = {c: [None if v is None else f" {v} " for v in rows.column(c).to_pylist()] for c in ("age", "income")}
    retyped = {**{c: rows.column(c).to_pylist() for c in rows.column_names}, **text,
               "zone": [float(v) for v in rows.column("zone").to_pylist()]}
    np.testing.assert_array_equal(model.predict(retyped)["score"], typed)
    pq.write_table(pa.table({**{c: rows.column(c) for c in rows.column_names},
                             **{c: pa.array(v) for c, v in text.items()}}), tmp_path / "rows.parquet")
    np.testing.assert_array_equal(model.predict_parquet(tmp_path / "rows.parquet")["score"], typed)
    with pytest.raises(BundleError, match=r"^column 'age' has 1 value\(s\) that cannot be read as int, .*\(e\.g\. 12\.5\)$"):
        model.predict({**retyped, "age": [12.5] + rows.column("age").to_pylist()[1:]})
    with pytest.raises(BundleError, match="rows lack column\\(s\\) income; the model reads"):
        model.predict({c: v for c, v in retyped.items() if c != "income"})


def test_a_format_1_bundle_is_read_and_an_unknown_format_refused(tmp_path):
    folder, *_ = artifact(tmp_path / "a", "binary_classification", None)
    bundle = write_bundle(folder, tmp_path / "bundle")
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["format"] == 2 and "input_cast.py" in manifest["files"] and (bundle / "input_cast.py").is_file()
    for readable, number in ((True, 1), (False, 3)):
        (bundle / "bundle.json").write_text(json.dumps({**manifest, "format": number}))
        if readable:
            assert load(bundle).manifest["format"] == 1
        else:
            with pytest.raises(BundleError, match="bundle format 3; this score.py reads 1, 2"):
                load(bundle)


@pytest.mark.parametrize("ctype", ["timestamp", "date"])
@pytest.mark.parametrize("values", [np.array(["2026-01-02T03:04:05", "NaT", "1900-12-31T23:59"], "datetime64[s]"),
                                    np.array(["2026-01-02T03:04:05.123456789", "1969-12-31T23:59:59.999999999"],
                                             "datetime64[ns]")])
def test_numpy_times_are_cast_as_loopc_casts_them(values, ctype):
    assert_same(standalone(input_cast.classify("x", values), ctype), loopc_cast(pa.array(values), ctype))
