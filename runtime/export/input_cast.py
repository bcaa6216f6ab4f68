"""Cast a bundle's input columns to the types the dataset declared (``input_schema.json``) exactly as
loopc's validate step casts (runtime/data/casting.py), with NumPy and the standard library only.

Copied into every bundle beside ``score.py``; it must never import loopc (pyarrow only to read a record
batch). A column comes back as the features read it: int, float, bool, timestamp (seconds) and date
(seconds at midnight UTC) as float64 with NaN nulls; string and category as a list of str or None.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import Decimal

import numpy as np

_NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|(?i:inf|infinity))", re.ASCII)
_WHOLE = re.compile(r"[+-]?\d+(\.0*)?", re.ASCII)  # integer text, or a whole decimal (2.0), read exactly
_BOOLEAN = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False, "yes": True, "no": False}
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,6}))?)?)?"
                  r"(Z|[+-]\d\d:?\d\d)?", re.ASCII)
_EPOCH = dt.datetime(1970, 1, 1)
_DAY_US = 86_400_000_000
TEXT = ("string", "category")
SHOWN = 5


class CastError(ValueError):
    """A column holds a value that cannot be read as its declared type, or mixes kinds of values."""


# --------------------------------------------------------------------------- columns as (kind, values, null)


def _python_kind(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, (dt.date, np.datetime64)):
        return "time"
    return "other"


def classify(name: str, values) -> tuple[str, object, np.ndarray]:
    """A dict column as (kind, values, null mask): numbers, booleans or times as arrays, text as a list.

    NaN is a null here (the bundle's convention for columns given as lists or arrays).
    """
    array = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
    if array.dtype.kind in "biu":
        return {"b": "bool"}.get(array.dtype.kind, "int"), array, np.zeros(len(array), bool)
    if array.dtype.kind == "f":
        return "float", array, np.isnan(array)
    if array.dtype.kind == "M":
        return "time", _Times(array, array), np.isnat(array)
    items = list(array)
    null = np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in items], bool)
    kinds = {_python_kind(v) for v, n in zip(items, null) if not n}
    if kinds == {"int", "float"}:
        kinds = {"float"}
    if len(kinds) > 1:
        raise CastError(f"column '{name}' mixes {' and '.join(sorted(kinds))} values; give one kind per column")
    kind = kinds.pop() if kinds else "text"
    if kind in ("bool", "float"):
        return kind, np.array([0 if n else v for v, n in zip(items, null)], np.float64), null
    if kind == "int":
        ints = [0 if n else int(v) for v, n in zip(items, null)]
        if any(not -2**63 <= v < 2**63 for v in ints):
            return "other", items, null  # beyond int64: pyarrow cannot hold it either
        return kind, np.array(ints, np.int64), null
    if kind == "time":
        zone = next((v.tzinfo for v, n in zip(items, null) if not n and getattr(v, "tzinfo", None)), None)
        return kind, _Times(*(np.array([np.datetime64("NaT") if n else _micros(v, local) for v, n in zip(items, null)],
                                       "datetime64[us]") for local in (None, zone))), null
    return kind, [None if n else v for v, n in zip(items, null)], null


class _Times:
    """Times as UTC datetime64 and as the wall time of the column's zone (pyarrow takes a date from that)."""

    def __init__(self, utc: np.ndarray, local: np.ndarray):
        self.utc, self.local = utc, local

    def __len__(self) -> int:
        return len(self.utc)

    def __getitem__(self, index):
        return self.utc[index]


def _micros(value, zone) -> np.datetime64:
    """A Python date or datetime as datetime64[us]: UTC (naive taken as UTC), or the wall time in ``zone``."""
    if isinstance(value, np.datetime64):
        return value
    if not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        value = value.astimezone(zone or dt.UTC).replace(tzinfo=None)
    return np.datetime64((value - _EPOCH) // dt.timedelta(microseconds=1), "us")


def arrow_classify(array) -> tuple[str, object, np.ndarray]:
    """A pyarrow column as (kind, values, null mask); a float NaN is a value, not a null, as in pyarrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    null = np.asarray(array.is_null().to_numpy(zero_copy_only=False), bool)
    kind_of = array.type
    if pa.types.is_boolean(kind_of) or pa.types.is_integer(kind_of):
        kind = "bool" if pa.types.is_boolean(kind_of) else "int"
        return kind, pc.fill_null(array, False if kind == "bool" else 0).to_numpy(zero_copy_only=False), null
    if pa.types.is_floating(kind_of) or pa.types.is_decimal(kind_of):
        if pa.types.is_decimal(kind_of):
            array = pc.cast(array, pa.float64())
        return "float", pc.fill_null(array, 0).to_numpy(zero_copy_only=False), null
    if pa.types.is_timestamp(kind_of) or pa.types.is_date(kind_of):
        zoned = pa.types.is_timestamp(kind_of) and kind_of.tz is not None
        local = pc.local_timestamp(array) if zoned else array
        return "time", _Times(array.to_numpy(zero_copy_only=False), local.to_numpy(zero_copy_only=False)), null
    if pa.types.is_string(kind_of) or pa.types.is_large_string(kind_of):
        return "text", array.to_pylist(), null
    return "other", array.to_pylist(), null


# --------------------------------------------------------------------------- casting


def cast_values(name: str, kind: str, values, null: np.ndarray, ctype: str):
    """The column as the features read it, cast to ``ctype``; CastError names the column and bad values."""
    times = ctype in ("timestamp", "date")
    if kind == "other" or (kind == "time") != times and kind != "text":  # no sensible conversion
        out, bad = ([None] * len(null) if ctype in TEXT else np.full(len(null), np.nan)), ~null
    elif ctype in TEXT:
        return [None if n else _text(kind, v) for v, n in zip(values, null)]
    elif kind == "text":
        out, bad = _parse_text(values, null, ctype)
    elif kind == "time":
        out, bad = _times(values, null, ctype)
    else:
        out, bad = _numbers(kind, values, null, ctype)
    if bad.any():
        raise CastError(f"column '{name}' has {int(bad.sum())} value(s) that cannot be read as {ctype}, "
                        f"the type the model was trained on (e.g. {_examples(values, bad)})")
    return out


def _examples(values, bad: np.ndarray) -> str:
    shown: list = []
    for value in (values[i] for i in np.flatnonzero(bad)):
        value = value.item() if isinstance(value, np.generic) else value
        if value not in shown:
            shown.append(value)
        if len(shown) == SHOWN:
            break
    return ", ".join(repr(v) for v in shown)


def _numbers(kind: str, values: np.ndarray, null: np.ndarray, ctype: str) -> tuple[np.ndarray, np.ndarray]:
    """Numbers or booleans to int, float or bool; a float that is not whole is bad for int."""
    numbers = np.asarray(values).astype(np.float64)
    if ctype == "int" and kind == "int":
        bad = ~null & (values > 2**63 - 1) if values.dtype == np.uint64 else np.zeros(len(values), bool)
    elif ctype == "int":
        with np.errstate(invalid="ignore"):
            bad = ~null & ~(np.isfinite(numbers) & (np.floor(numbers) == numbers) & (np.abs(numbers) < 2**62))
    elif ctype == "bool":
        bad = ~null & ~np.isin(numbers, (0.0, 1.0))
    else:
        bad = np.zeros(len(numbers), bool)
    if ctype != "float":
        numbers = numbers + 0.0  # -0.0 is the int or bool 0
    return np.where(null | bad, np.nan, numbers), bad


def _parse_text(values: list, null: np.ndarray, ctype: str) -> tuple[np.ndarray, np.ndarray]:
    parsed = [None if n else _parse(v.strip(), ctype) for v, n in zip(values, null)]
    bad = np.array([p is None for p in parsed], bool) & ~null
    return np.array([np.nan if p is None else p for p in parsed], np.float64), bad


def _parse(text: str, ctype: str) -> float | None:
    """One text value as a number (None when it cannot be read as ``ctype``)."""
    if ctype == "float":
        return float(text) if _NUMBER.fullmatch(text) else None
    if ctype == "int":
        if _WHOLE.fullmatch(text):
            whole = int(text.split(".")[0])
            return float(whole) if -2**63 <= whole < 2**63 else None
        number = float(text) if _NUMBER.fullmatch(text) else math.nan  # 1e3: whole below 2**62, as a float column
        return number if math.isfinite(number) and number == math.floor(number) and abs(number) < 2**62 else None
    if ctype == "bool":
        found = _BOOLEAN.get(text.lower())
        return None if found is None else float(found)
    micros = _iso_micros(text)
    if micros is None:
        return None
    return float(micros - micros % _DAY_US if ctype == "date" else micros) / 1e6


def _iso_micros(text: str) -> int | None:
    """ISO 8601 text (naive taken as UTC, offsets +hh:mm, +hhmm or Z) as microseconds since 1970 UTC."""
    match = _ISO.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                             int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = -1 if offset[0] == "-" else 1
        moment -= sign * dt.timedelta(hours=int(offset[1:3]), minutes=int(offset[-2:]))
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _times(times: _Times, null: np.ndarray, ctype: str) -> tuple[np.ndarray, np.ndarray]:
    """Times as seconds (a date: its wall time's day); finer than microseconds is floored to them, as loopc does."""
    values = times.local if ctype == "date" else times.utc
    ticks = values.astype("datetime64[us]").astype(np.int64)  # NumPy floors, like pyarrow's floor_temporal
    if ctype == "date":
        ticks = ticks - ticks % _DAY_US
    return np.where(null, np.nan, ticks.astype(np.float64) / 1e6), np.zeros(len(null), bool)  # none is bad


def _text(kind: str, value) -> str:
    """One value as pyarrow casts it to a string: booleans 'true'/'false', floats in shortest form."""
    if kind == "bool":
        return "true" if value else "false"
    if kind == "int":
        return str(int(value))
    if kind == "float":
        return float_text(value)
    return value


def float_text(value) -> str:
    """A float as pyarrow writes it: shortest digits, fixed from 1e-6 to below 1e10, else 'de+X' / 'd.dde-X'."""
    number = float(value)
    if math.isnan(number):
        return "nan"
    if math.isinf(number):
        return "inf" if number > 0 else "-inf"
    exact = Decimal(str(value)).normalize()  # str keeps a float32's own shortest digits
    sign, digits, exponent = exact.as_tuple()
    magnitude = len(digits) - 1 + exponent
    if -6 <= magnitude < 10:
        return format(exact, "f")
    mantissa = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if len(digits) > 1 else "")
    return f"{'-' if sign else ''}{mantissa}e{'+' if magnitude > 0 else '-'}{abs(magnitude)}"
