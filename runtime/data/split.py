"""Deterministic train/valid/test splits: by a stable hash of a key, by time, or random with a seed."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.casting import one_array
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.split_record import SPLITS, checked_counts

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = np.uint64(0x100000001B3)
_MASK = (1 << 64) - 1
_BLOCK_BYTES = 1 << 18  # text bytes stable_hash64 gathers at once (its index array is 8x that)


def _fnv1a(data: bytes, state: int = _FNV_OFFSET) -> int:
    """64-bit FNV-1a of ``data`` continuing from ``state`` (for the short key prefix)."""
    for byte in data:
        state = ((state ^ byte) * 0x100000001B3) & _MASK
    return state


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer: spreads every input bit over the whole 64-bit word."""
    values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return values ^ (values >> np.uint64(31))


def stable_hash64(values: pa.Array, key: bytes = b"") -> np.ndarray:
    """uint64 per row: FNV-1a over ``key``, a zero byte and the value's UTF-8 text, then splitmix64.

    Pure integer arithmetic, vectorized over the rows of one text length at a time (a byte matrix,
    one position a row): the same value gets the same number forever, on every machine, whatever
    the other rows or their order. Nulls hash like the empty string.
    """
    text = pc.fill_null(pc.cast(values, pa.large_string()), "")
    text = one_array(text)  # a single chunk as it is: combine_chunks would copy it
    count = len(text)
    offsets = np.frombuffer(text.buffers()[1], np.int64)[text.offset : text.offset + count + 1]
    data = np.frombuffer(text.buffers()[2], np.uint8)  # pyarrow always allocates it, empty or not
    starts, lengths = offsets[:-1], np.diff(offsets)
    hashes = np.empty(count, np.uint64)
    seed = np.uint64(_fnv1a(key + b"\0"))
    for rows, length in _rows_by_length(lengths):
        hashes[rows] = _fnv1a_rows(data, starts[rows], length, seed)
    return _splitmix64(hashes)


def _rows_by_length(lengths: np.ndarray) -> Iterator[tuple[np.ndarray | slice, int]]:
    """(the rows, as indices or a slice of all, their common length) for each length present (none for no rows)."""
    sizes = np.bincount(lengths)
    present = np.flatnonzero(sizes)
    if len(present) == 1:  # one length (fixed-width keys): every row, no sort
        yield slice(None), int(present[0])
        return
    narrow = lengths.astype(np.uint16) if len(sizes) <= 1 << 16 else lengths  # a stable uint16 sort is a radix sort
    order, bounds = np.argsort(narrow, kind="stable"), np.concatenate(([0], np.cumsum(sizes)))
    for length in present:
        yield order[bounds[length] : bounds[length + 1]], int(length)


def _fnv1a_rows(data: np.ndarray, starts: np.ndarray, length: int, seed: np.uint64) -> np.ndarray:
    """FNV-1a from ``seed`` over ``length`` bytes of ``data`` from each of ``starts``, a block of rows at a time
    (a (position, row) byte matrix of at most _BLOCK_BYTES, each position's row contiguous)."""
    hashes = np.full(len(starts), seed)  # uint64: seed is a np.uint64
    step = max(_BLOCK_BYTES // max(length, 1), 1)
    packed = length and len(starts) and int(starts[-1] - starts[0]) == (len(starts) - 1) * length  # back to back
    rows = data[int(starts[0]) : int(starts[0]) + len(starts) * length].reshape(-1, length) if packed else None
    for first in range(0, len(starts), step):
        if rows is not None:  # a view of the bytes: nothing gathered
            block = rows[first : first + step].T
        else:
            block = data[np.arange(length)[:, None] + starts[first : first + step]]
        part = hashes[first : first + step]
        for position in range(length):
            np.bitwise_xor(part, block[position], out=part)
            np.multiply(part, _FNV_PRIME, out=part)
    return hashes


def hash_unit(values: pa.Array, seed: int = 0) -> np.ndarray:
    """A number in [0, 1) per row from :func:`stable_hash64` keyed by ``seed``."""
    hashed = stable_hash64(values, str(seed).encode("ascii"))
    return (hashed >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _column(table: pa.Table, name: str, method: str) -> pa.ChunkedArray:
    if name not in table.column_names:
        raise DataError(f"split method '{method}' uses column '{name}', which the table lacks "
                        f"(columns: {', '.join(table.column_names)})")
    column = table.column(name)
    if column.null_count:
        raise null_split_values(name, column.null_count)
    return column


def null_split_values(name: str, count: int) -> DataError:
    """The error for ``count`` rows whose split column ``name`` is null: no row is assigned without a value."""
    return DataError(f"split column '{name}' has {count} null value(s); "
                     "every row needs a value to be assigned to a split")


def _assign_by_unit(unit: np.ndarray, split: dict) -> np.ndarray:
    """0 train, 1 valid, 2 test from a number in [0, 1) per row."""
    train, valid = split["train"], split["train"] + split["valid"]
    return (unit >= train).view(np.uint8) + (unit >= valid).view(np.uint8)  # how many edges are <= unit


def _assign_by_time(table: pa.Table, split: dict) -> np.ndarray:
    """Rows before the first cut time train, before the second valid, the rest test.

    Cut times are the order statistics at the split fractions, so rows with equal times
    always land together and the assignment does not depend on row order.
    """
    column = _column(table, split["column"], "time")
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
    values = column.to_numpy()
    ordered = np.sort(values, kind="stable")
    count = len(values)
    cuts = [int(round(count * split["train"])), int(round(count * (split["train"] + split["valid"])))]
    times = [ordered[min(c, count - 1)] for c in cuts if count]
    return np.where(values < times[0], 0, np.where(values < times[1], 1, 2)) if count else np.zeros(0, int)


def assign_random(rows: int, split: dict) -> np.ndarray:
    """Split index per row of ``rows`` rows for a random split: a seeded permutation (reads no column)."""
    permutation = np.random.default_rng(split.get("seed", 0)).permutation(rows)
    unit = np.empty(rows)
    unit[permutation] = (np.arange(rows) + 0.5) / max(rows, 1)
    return _assign_by_unit(unit, split)


def assign_splits(table: pa.Table, split: dict) -> np.ndarray:
    """Split index per row (0 train, 1 valid, 2 test) for a ``Split`` dict."""
    method = split.get("method", "random")
    if method == "hash":
        return _assign_by_unit(hash_unit(_column(table, split["key"], "hash"), split.get("seed", 0)), split)
    if method == "time":
        return _assign_by_time(table, split)
    if method == "random":
        return assign_random(table.num_rows, split)
    raise DataError(f"unknown split method '{method}'; use hash, time or random")


def split_columns(split: dict) -> list[str]:
    """The columns a ``Split`` reads to assign rows: the hash key, the time column, or none (random)."""
    method = split.get("method", "random")
    return [split["key"]] if method == "hash" else [split["column"]] if method == "time" else []


def split_counts(assignment: np.ndarray, split: dict) -> dict[str, int]:
    """Rows per split; DataError when a split with a positive fraction comes out empty."""
    return checked_counts(np.bincount(assignment, minlength=len(SPLITS)), split)


def split_table(table: pa.Table, split: dict) -> dict[str, pa.Table]:
    """``{"train", "valid", "test"}`` tables, each keeping the input's row order.

    Raises DataError when a split with a positive fraction comes out empty.
    """
    assignment = assign_splits(table, split)
    split_counts(assignment, split)
    return {name: table.filter(pa.array(assignment == index)) for index, name in enumerate(SPLITS)}
