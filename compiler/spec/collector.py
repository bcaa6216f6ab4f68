"""Pause Python's cyclic garbage collector while the compiler builds large trees of objects it keeps."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def collector_paused() -> Iterator[None]:
    """Run the block with the cyclic collector off; reference counting still frees every acyclic object.

    Loading, planning and rendering a repository allocate millions of small objects that live until the
    command ends, and each automatic collection would scan them all again (a third of a full validate).
    Inside another pause, or with the collector already off, the collector is left as it is.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
