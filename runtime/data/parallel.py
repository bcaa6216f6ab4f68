"""Column-parallel map on a small thread pool, shared by the features step, profiles and drift."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def map_columns(fn: Callable[..., T], items: Sequence[Any], threads: int | None = None) -> list[T]:
    """``[fn(item) for item in items]``, on a thread pool when it helps (NumPy and Arrow kernels release the GIL)."""
    workers = min(len(items), threads if threads is not None else min(4, os.cpu_count() or 1))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))
