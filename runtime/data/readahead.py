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

    Arrow's decoding releases the GIL, so the next batch is read while NumPy works on this one. The
    producer takes the next item only when the consumer has taken one: besides the consumer's item,
    at most ``depth`` are held (being produced or waiting), which the memory budget counts
    (``rows.ahead_rows``). An exception raised while producing is raised here, at the item where it
    happened; a consumer that stops early (an error, ``close``) stops the producer before the next item
    and waits for it.
    """
    slots: queue.SimpleQueue = queue.SimpleQueue()
    room = threading.Semaphore(depth)
    stop = threading.Event()

    source = iter(items)

    def produce() -> None:
        try:
            while _acquire(room, stop):
                item = next(source, _DONE)
                slots.put(item)
                if item is _DONE:
                    return
        except BaseException as error:  # noqa: BLE001 (handed to the consumer, who raises it)
            slots.put(_Failed(error))
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
            room.release()
            yield item
    finally:
        stop.set()
        worker.join()


def _acquire(room: threading.Semaphore, stop: threading.Event) -> bool:
    """Wait for room for one more item unless the consumer stopped (checked every 50 ms while there is none)."""
    while not stop.is_set():
        if room.acquire(timeout=0.05):
            return True
    return False
