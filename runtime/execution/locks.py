"""Exclusive file locks (``flock``) that the kernel releases when their holder dies, even by ``kill -9``.

A lock file is removed by its holder on release. A waiter that was blocked on the removed file
notices (the path no longer names the file it locked) and locks the new one, so removing lock
files never lets two holders in at once. The standard library's ``fcntl`` does the locking;
well-known lock packages do not remove their files safely, which would leave one per cache key.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Callable, Iterator
from pathlib import Path


def _open_locked(path: Path, blocking: bool, on_wait: Callable[[], None] | None) -> int | None:
    """A descriptor holding the lock on the file now at ``path``; None when busy and not ``blocking``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not blocking:
                    os.close(fd)
                    return None
                if on_wait is not None:
                    on_wait()
                    on_wait = None
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _names_same_file(path, fd):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the holder removed the file while we waited: lock the one at ``path`` now


def _names_same_file(path: Path, fd: int) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike[str], on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock ``path`` for the block, waiting for another holder; ``on_wait()`` runs once before waiting."""
    path = Path(path)
    fd = _open_locked(path, blocking=True, on_wait=on_wait)
    assert fd is not None
    try:
        yield
    finally:
        _release(path, fd)


@contextlib.contextmanager
def try_exclusive(path: str | os.PathLike[str]) -> Iterator[bool]:
    """Hold the lock ``path`` for the block if nobody holds it; yields whether it was taken."""
    path = Path(path)
    fd = _open_locked(path, blocking=False, on_wait=None)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            _release(path, fd)
