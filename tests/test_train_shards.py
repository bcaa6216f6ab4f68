"""Row shards, batch capacity and per-process batches of multi-process training; worker ranks."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from loopc.runtime.execution.runner import worker_rank
from loopc.runtime.train.distributed import batch_capacity, local_batch, row_range


@given(st.integers(0, 10_000), st.integers(1, 64))
def test_row_ranges_cover_every_row_once_in_order(rows, count):
    ranges = [row_range(rows, i, count) for i in range(count)]
    assert ranges[0][0] == 0 and ranges[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    assert max(hi - lo for lo, hi in ranges) - min(hi - lo for lo, hi in ranges) <= 1


def test_batch_capacity_is_the_most_rows_one_process_has_in_one_batch():
    order = np.array([[0, 1, 2, 5], [3, 4, 6, 0]])  # 7 rows: process 0 has [0, 3), process 1 [3, 7)
    mask = np.array([[1, 1, 1, 1], [1, 1, 1, 0]], np.float32)  # the last id is padding
    bounds = np.array([0, 3, 7])
    assert batch_capacity(order, mask, bounds, 1) == 3  # batch 0: rows 0, 1, 2 of process 0; batch 1: 3, 4, 6
    assert batch_capacity(order, mask, bounds, 2) == 4  # rounded up to a multiple of the local devices
    assert batch_capacity(order, np.ones_like(mask), bounds, 1) == 3


def test_local_batch_takes_this_process_rows_in_batch_order_and_pads_with_weight_zero():
    x = np.arange(8, dtype=np.float32).reshape(4, 2) + 100  # the shard: global rows 3..6
    y, w = np.array([1, 0, 1, 0], np.float32), np.array([1, 2, 3, 4], np.float32)
    xb, yb, wb = local_batch(x, y, w, np.array([5, 0, 3, 9]), 3, 7, 4)
    np.testing.assert_array_equal(xb, [[104, 105], [100, 101], [0, 0], [0, 0]])
    np.testing.assert_array_equal(yb, [1, 1, 0, 0])
    np.testing.assert_array_equal(wb, [3, 1, 0, 0])


def test_worker_rank_reads_loopc_then_slurm_and_ignores_one_task_jobs():
    assert worker_rank({}) == 0
    assert worker_rank({"LOOPC_PROCESS_ID": "3"}) == 3
    assert worker_rank({"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2"}) == 1
    assert worker_rank({"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "1"}) == 0
    assert worker_rank({"SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "4"}) == 0
    assert worker_rank({"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}) == 0  # not in an srun step
    assert worker_rank({"LOOPC_PROCESS_ID": "x", "SLURM_PROCID": "2", "SLURM_STEP_NUM_TASKS": "3"}) == 2
