"""read_ahead: the items in order, errors where they happened, nothing left running after an early stop."""

import threading

import pytest

from loopc.runtime.data.readahead import read_ahead


def test_every_item_arrives_in_order_and_at_most_one_ahead():
    """The producer takes an item only after the consumer took the one before: the memory budget counts one."""
    produced = []

    def items():
        for i in range(50):
            produced.append(i)
            yield i

    seen = []
    for item in read_ahead(items()):
        seen.append(item)
        assert len(produced) <= item + 2  # this one and the one being produced (or waiting): not one more
    assert seen == list(range(50))


def test_an_error_while_producing_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise ValueError("row group 3 is corrupt")

    seen = []
    with pytest.raises(ValueError, match="row group 3 is corrupt"):
        for item in read_ahead(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_consumer_that_stops_early_closes_the_source_on_its_thread_and_leaves_no_thread():
    closed, threads = threading.Event(), []

    def items():
        try:
            for i in range(1000):
                threads.append(threading.current_thread())
                yield i
        finally:
            closed.set()

    stream = read_ahead(items())
    assert next(stream) == 0
    stream.close()
    assert closed.is_set()
    assert threads[0] is not threading.current_thread()
    assert not any(t.name == "loopc-read-ahead" for t in threading.enumerate())


def test_an_empty_source_ends_at_once():
    assert list(read_ahead(iter(()))) == []


def test_a_consumer_that_stops_early_stops_the_producer_at_once_and_the_source_is_closed_on_its_thread():
    produced, closed_on = [], []

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed_on.append(threading.current_thread())

    stream = read_ahead(items())
    assert next(stream) == 0
    stream.close()
    assert len(produced) <= 2  # this one and the one read ahead: not the other 998
    assert len(closed_on) == 1 and closed_on[0] is not threading.current_thread()
