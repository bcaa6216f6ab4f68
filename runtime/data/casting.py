"""Casting a table to its declared column types and finding every row that breaks a column rule."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.booleans import BOOLEAN_TEXT

MAX_EXAMPLES = 5
ARROW_TYPES = {
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "category": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),
}
_NUMBER = r"^\s*[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:inf|infinity))\s*$"  # inf: how Arrow and pandas write it
_WHOLE = r"^[+-]?\d+(\.0*)?$"  # trimmed integer text, or a whole decimal (2.0: how pandas writes an int column with gaps)
_HOUR, _SIXTY = r"([01]\d|2[0-3])", r"[0-5]\d"
_OFFSET = rf"(Z|[+-]{_HOUR}:?{_SIXTY})"
_ISO = rf"^\d{{4}}-\d\d-\d\d([T ]{_HOUR}:{_SIXTY}(:{_SIXTY}(\.\d{{1,6}})?)?)?"  # microseconds at most, as the bundle reads
_DAY = "%Y-%m-%d"
_NOTHING = [np.zeros(0, bool)]  # nothing_bad's shared mask, grown to the longest asked for


@dataclass(frozen=True)
class Violation:
    """Rows of one column that break one rule (or a whole-column problem such as a missing column)."""

    dataset: str
    column: str
    rule: str
    count: int
    examples: list = field(default_factory=list)
    message: str = ""
    severity: str = "error"

    def to_dict(self) -> dict:
        return asdict(self)


def jsonable(value):
    """A JSON-friendly form of one example value."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def examples(array: pa.Array, mask: np.ndarray, distinct: bool = False) -> list:
    """Up to MAX_EXAMPLES values of ``array`` where ``mask`` holds, in row order."""
    picked = array.filter(pa.array(mask))
    if distinct:
        try:
            picked = pc.unique(picked)
        except pa.ArrowNotImplementedError:
            pass  # nested values (lists, structs) have no unique kernel: show them as they come
    shown = picked.slice(0, MAX_EXAMPLES)
    try:
        return [jsonable(v) for v in shown.to_pylist()]
    except (ValueError, OverflowError, pa.ArrowException):  # no Python value (nanoseconds, years past 9999)
        return [jsonable(v) for v in pc.cast(shown, pa.string()).to_pylist()]


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _valid(array: pa.Array) -> np.ndarray:
    return np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _parse_text(array: pa.Array, ctype: str) -> tuple[pa.Array, np.ndarray]:
    """Parse text into ``ctype``: the parsed array (bad values null) and the mask of bad values."""
    text = pc.utf8_trim_whitespace(array)
    if ctype == "int":
        parsed = _parse_int(text)
    elif ctype == "float":
        parsed = pc.cast(pc.if_else(pc.match_substring_regex(text, _NUMBER), text, pa.scalar(None, pa.string())),
                         pa.float64())
    elif ctype == "bool":
        lowered = pc.utf8_lower(text)
        parsed = pc.is_in(lowered, value_set=pa.array(list(BOOLEAN_TEXT)))
        parsed = pc.if_else(parsed, pc.is_in(lowered, value_set=pa.array([k for k, v in BOOLEAN_TEXT.items() if v])), None)
    else:
        parsed = _parse_times(text, ctype)
    bad = _valid(array) & ~_valid(parsed)
    return parsed, bad


def _parse_int(text: pa.Array) -> pa.Array:
    """Trimmed text to int64, as a float column is read as int: integer text (``-3``, ``+5``, ``007``) and whole
    decimals (``2.0``) exactly, other numbers (``1e3``) when whole and below 2**62; anything else null, and a value
    beyond int64 null without taking its batch with it."""
    whole = pc.match_substring_regex(text, _WHOLE)
    digits = pc.replace_substring_regex(pc.if_else(whole, text, pa.scalar(None, pa.string())), r"^\+|\.0*$", "")
    parsed = _halving(digits, pa.int64())
    other = pc.and_not(pc.match_substring_regex(text, _NUMBER), whole)
    if pc.any(other).as_py():
        numbers, _ = _cast_numeric(pc.cast(pc.if_else(other, text, pa.scalar(None, pa.string())), pa.float64()), "int")
        parsed = pc.if_else(other, numbers, parsed)
    return parsed


def _parse_times(text: pa.Array, ctype: str) -> pa.Array:
    """ISO 8601 text to timestamps (naive ones taken as UTC) or dates; unparsable values null.

    The shape check keeps hours, minutes, seconds and offsets in range; a day that does not exist is
    found by ``_cast_or_null``."""
    iso = pc.match_substring_regex(text, _ISO + _OFFSET + "?$")
    aware = pc.and_(iso, pc.match_substring_regex(text, _OFFSET + "$"))
    utc = pa.timestamp("us", tz="UTC")
    with_offset = _cast_or_null(pc.if_else(aware, text, None), utc)
    naive = pc.cast(_cast_or_null(pc.if_else(pc.and_not(iso, aware), text, None), pa.timestamp("us")), utc)
    stamps = pc.if_else(aware, with_offset, naive)
    return pc.cast(stamps, pa.date32()) if ctype == "date" else stamps


def _real_day(text: pa.Array) -> pa.Array:
    """Whether the first ten characters name a day of the calendar: parsed and printed again they are the same
    (2026-02-30 parses as 2026-03-02, 2026-13-01 not at all); null where ``text`` is."""
    day = pc.utf8_slice_codeunits(text, 0, 10)
    parsed = pc.strptime(day, format=_DAY, unit="s", error_is_null=True)
    return pc.fill_null(pc.equal(pc.strftime(parsed, format=_DAY), day), False)


def _cast_or_null(text: pa.Array, target: pa.DataType) -> pa.Array:
    """ISO-shaped ``text`` cast to ``target``, a value that cannot be (2026-02-30) null instead of failing every
    row: when the cast fails, the days that do not exist are nulled in one pass and the rest cast; should a
    value still fail (none known), the bad ones are found by halving."""
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        pass
    text = pc.if_else(_real_day(text), text, pa.scalar(None, pa.string()))
    return _halving(text, target)


def _halving(text: pa.Array, target: pa.DataType) -> pa.Array:
    """``text`` cast to ``target``, each value the cast refuses null (found by halving: a few casts when few are)."""
    try:
        return pc.cast(text, target)
    except pa.ArrowInvalid:
        if len(text) <= 1:
            return pa.nulls(len(text), target)
        half = len(text) // 2
        return pa.concat_arrays([_halving(text.slice(0, half), target), _halving(text.slice(half), target)])


def _cast_numeric(array: pa.Array, ctype: str) -> tuple[pa.Array, np.ndarray]:
    """Numbers and booleans to int/float/bool; a float that is not whole is bad for int."""
    values = array if array.type == pa.float64() else pc.cast(array, pa.float64(), safe=False)  # a call a column
    if ctype == "float":
        if not _may_hold_nan(values):
            return values, nothing_bad(len(array))  # the same buffers
        nan = pc.is_nan(values)
        return (pc.if_else(nan, None, values) if pc.any(nan).as_py() else values), nothing_bad(len(array))
    numbers = values.to_numpy(zero_copy_only=False)
    valid = _valid(array)
    if ctype == "int":
        bad = valid & ~(np.isfinite(numbers) & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**62))
    else:
        bad = valid & ~np.isin(numbers, (0.0, 1.0))
    masked = pc.if_else(pa.array(bad), None, values)
    return pc.cast(masked, ARROW_TYPES[ctype]), bad


def _may_hold_nan(values: pa.Array) -> bool:
    """False only when no slot of the float64 ``values`` is NaN: their sum is a number (one pass, no copy).

    A NaN (or inf and -inf, or garbage under a null) makes the sum NaN: then the caller looks exactly.
    """
    if not len(values):
        return False
    data = np.frombuffer(values.buffers()[1], np.float64, len(values), values.offset * 8)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, or a sum past the largest float: no warning
        return bool(np.isnan(np.add.reduce(data)))


def _cast_integer(array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Any integer type to int64 without a detour through float; uint64 beyond int64 is bad."""
    bad = np.zeros(len(array), bool)
    if array.type == pa.uint64():
        too_big = pc.fill_null(pc.greater(array, pa.scalar(2**63 - 1, pa.uint64())), False)
        bad = np.asarray(too_big.to_numpy(zero_copy_only=False), dtype=bool)
        array = pc.if_else(too_big, pa.scalar(None, pa.uint64()), array)
    return pc.cast(array, pa.int64()), bad


def nothing_bad(count: int) -> np.ndarray:
    """An all-False read-only mask of ``count`` rows: a view of one shared buffer, not a new one per batch."""
    shared = _NOTHING[0]  # read once: another thread (read-ahead casts) may swap in a shorter one meanwhile
    if len(shared) < count:
        shared = np.zeros(count, bool)
        shared.flags.writeable = False
        _NOTHING[0] = shared
    return shared[:count]


def one_array(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``column`` as one Array: a single chunk as it is (``combine_chunks`` copies even one), several concatenated."""
    if not isinstance(column, pa.ChunkedArray):
        return column
    chunks = column.chunks
    if len(chunks) == 1:
        return chunks[0]
    return pa.concat_arrays(chunks) if chunks else pa.array([], column.type)


def cast_column(array: pa.Array, ctype: str) -> tuple[pa.Array, np.ndarray]:
    """``array`` cast to the declared ``ctype`` (NaN floats become null) and a read-only mask of uncastable rows.

    A source type with no sensible conversion (a list declared as int, ...) marks every
    non-null row uncastable.
    """
    array = one_array(array)
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    try:
        return _cast(array, ctype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return pa.nulls(len(array), ARROW_TYPES[ctype]), _valid(array)


def _cast(array: pa.Array, ctype: str) -> tuple[pa.Array, np.ndarray]:
    target, source = ARROW_TYPES[ctype], array.type
    none_bad = nothing_bad(len(array))
    if source == target and ctype != "float":  # already the declared type (a float still has its NaN check)
        return array, none_bad
    if ctype in ("string", "category"):
        return pc.cast(array, target), none_bad
    if _is_text(source):
        return _parse_text(array, ctype)
    if ctype == "int" and pa.types.is_integer(source):
        return _cast_integer(array)
    numeric_source = pa.types.is_integer(source) or pa.types.is_floating(source) or pa.types.is_boolean(source)
    if ctype in ("int", "float", "bool") and (numeric_source or pa.types.is_decimal(source)):
        return _cast_numeric(array, ctype)
    temporal = pa.types.is_timestamp(source) or pa.types.is_date(source)
    if ctype in ("timestamp", "date") and temporal:
        if pa.types.is_timestamp(source) and source.unit == "ns":  # pandas' unit: microseconds hold what is kept
            utc = pc.floor_temporal(array.cast(pa.timestamp("ns")), unit="microsecond")  # in UTC: no DST to trip on
            array = utc.cast(pa.timestamp("us")).cast(pa.timestamp("us", source.tz))
        if ctype == "timestamp" and pa.types.is_timestamp(source) and source.tz is None:
            return pc.assume_timezone(pc.cast(array, pa.timestamp("us")), "UTC"), none_bad
        return pc.cast(array, target), none_bad
    return pa.nulls(len(array), target), _valid(array)
