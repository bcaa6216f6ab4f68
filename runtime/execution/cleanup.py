"""What killed executions leave in a state folder: staging folders and lock files, removed when nobody holds them."""

from __future__ import annotations

from pathlib import Path

from loopc.runtime.execution.locks import try_exclusive
from loopc.runtime.execution.runner import lock_path


def remove_stale_staging(state: Path) -> list[str]:
    """Delete staging folders and lock files of keys no live execution holds; return the keys cleaned.

    A killed execution leaves both behind; taking a key's lock proves nobody writes it now, and
    releasing the lock deletes its file.
    """
    from loopc.runtime.store.artifacts import open_store

    store = open_store(state)
    locked = {path.name.removesuffix(".lock") for path in state.glob("locks/*/*.lock")}
    cleaned = []
    for key in sorted(set(store.leftover_keys()) | locked):
        with try_exclusive(lock_path(state, key)) as free:
            if free:
                store.remove_leftovers(key)
                cleaned.append(key)
    return cleaned
