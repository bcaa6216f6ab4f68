"""The column-parallel maps (data/parallel): results in item order, exceptions raised to the caller, and the
caller's own thread when one thread is asked for."""

from __future__ import annotations

import threading
import time

import pytest

from loopc.runtime.data.parallel import column_pool, column_threads, map_columns


def test_results_come_in_item_order_whatever_order_the_threads_finish_in():
    def slow_first(item: int) -> int:
        time.sleep(0.02 if item == 0 else 0.0)
        return item * 10

    with column_pool(4) as mapped:
        assert mapped(slow_first, [0, 1, 2, 3, 4]) == [0, 10, 20, 30, 40]
        assert mapped(slow_first, [3, 0]) == [30, 0]  # the pool serves call after call
    assert map_columns(slow_first, [2, 0, 1], threads=3) == [20, 0, 10]


def test_one_thread_maps_in_the_callers_thread_and_more_use_others():
    def thread_of(_item: int) -> int:
        time.sleep(0.01)  # each item holds its thread a while, so the pool starts a thread per item
        return threading.get_ident()

    with column_pool(1) as mapped:
        assert set(mapped(thread_of, [0, 1, 2])) == {threading.get_ident()}
    with column_pool(3) as mapped:
        used = set(mapped(thread_of, [0, 1, 2]))
    assert threading.get_ident() not in used and len(used) > 1
    assert set(map_columns(thread_of, [0, 1, 2], threads=1)) == {threading.get_ident()}  # threads=1 asked: no pool
    assert threading.get_ident() not in set(map_columns(thread_of, [0, 1], threads=2))


def test_an_items_exception_reaches_the_caller():
    def fails_on_two(item: int) -> int:
        if item == 2:
            raise ValueError("item 2")
        return item

    for threads in (1, 4):
        with column_pool(threads) as mapped, pytest.raises(ValueError, match="item 2"):
            mapped(fails_on_two, [0, 1, 2, 3])


def test_threads_default_to_the_cores_up_to_four(monkeypatch):
    monkeypatch.setattr("loopc.runtime.data.parallel.os.cpu_count", lambda: 16)
    assert column_threads() == 4 and column_threads(7) == 7 and column_threads(0) == 1
    monkeypatch.setattr("loopc.runtime.data.parallel.os.cpu_count", lambda: None)
    assert column_threads() == 1
    assert map_columns(lambda item: item + 1, []) == []
