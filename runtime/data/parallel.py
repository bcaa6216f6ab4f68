"""Column-parallel maps on a small thread pool, shared by validate, the features step, profiles and drift."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")
ColumnMap = Callable[[Callable[..., T], Sequence[Any]], list[T]]


def column_threads(threads: int | None = None) -> int:
    """Threads for a column-parallel map: ``threads``, or up to 4 (more copies held at once pay little more)."""
    return max(1, threads if threads is not None else min(4, os.cpu_count() or 1))


def map_columns(fn: Callable[..., T], items: Sequence[Any], threads: int | None = None) -> list[T]:
    """``[fn(item) for item in items]``, on a thread pool when it helps (NumPy and Arrow kernels release the GIL)."""
    with column_pool(min(len(items), column_threads(threads))) as mapped:
        return mapped(fn, items)


@contextmanager
def column_pool(threads: int | None = None) -> Iterator[ColumnMap]:
    """A ``map(fn, items) -> list`` kept for many calls (a loop over batches): in order, on ``threads`` threads
    (``column_threads``); in the caller's thread when that is one. An item's exception is raised by the map."""
    workers = column_threads(threads)
    if workers <= 1:
        yield lambda fn, items: [fn(item) for item in items]
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loopc-columns") as pool:
        yield lambda fn, items: list(pool.map(fn, items))
