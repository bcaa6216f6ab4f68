"""Decode the next record batch while the caller works on this one (one batch ahead, on a thread)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


def read_ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items`` in order, produced on a thread at most ``depth`` items ahead of the consumer.

    Arrow's decoding releases the GIL, so the next batch is read while NumPy works on this one. An
    exception raised while producing is raised here, at the item where it happened; a consumer that
    stops early (an error, ``close``) stops the producer before the next item and waits for it.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    source = iter(items)

    def produce() -> None:
        try:
            for item in source:
                if not _put(slots, item, stop):
                    return
            _put(slots, _DONE, stop)
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, who raises it)
            _put(slots, _Failed(error), stop)
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's files and contexts are released on the thread that ran it

    worker = threading.Thread(target=produce, name="loopc-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item
    finally:
        stop.set()
        worker.join()


def _put(slots: queue.Queue, item: object, stop: threading.Event) -> bool:
    """Hand ``item`` over unless the consumer stopped (checked every 50 ms while the queue is full)."""
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.05)
            return True
        except queue.Full:
            continue
    return False
