"""Load many pipeline files in worker processes (large repositories only; results identical to serial)."""

from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

from loopc.compiler.errors import SpecError, UsageError

Item = TypeVar("Item")
Result = TypeVar("Result")
MIN_FILES_PER_WORKER = 128


def worker_count(files: int, jobs: int | None) -> int:
    """Workers for ``files`` pipelines: ``jobs`` if given, else one per 128 files up to the CPU count (max 8)."""
    if jobs is not None:
        if jobs < 1:
            raise UsageError(f"--jobs must be 0 (automatic) or a positive number of workers, not {jobs}")
        return min(jobs, max(files, 1))
    return max(1, min(os.cpu_count() or 1, 8, files // MIN_FILES_PER_WORKER))


def map_chunks(function: Callable[[list[Item]], Result], items: Sequence[Item], workers: int) -> list[Result]:
    """``function`` over ``workers`` contiguous chunks of ``items``, in order, in spawned processes.

    Spawned (not forked) workers are safe even when the caller already runs threads (JAX, Airflow).
    """
    import multiprocessing  # only large trees pay for importing the process pool
    from concurrent.futures import ProcessPoolExecutor

    size = -(-len(items) // workers)
    chunks = [list(items[i:i + size]) for i in range(0, len(items), size)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=len(chunks), mp_context=context) as pool:
        return list(pool.map(function, chunks))


def flatten(results: list[tuple[list, list[SpecError]]]) -> tuple[list, list[SpecError]]:
    """Join the (loaded, errors) pairs of every chunk, keeping chunk order."""
    loaded, errors = [], []
    for chunk_loaded, chunk_errors in results:
        loaded.extend(chunk_loaded)
        errors.extend(chunk_errors)
    return loaded, errors
