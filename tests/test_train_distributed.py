"""Distributed start-up is a no-op for one process; two local devices train data-parallel correctly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from loopc.runtime.train.distributed import (
    maybe_initialize_distributed,
    spans_processes,
)
from loopc.runtime.train.trainer import TrainError


def test_single_process_environments_do_not_initialize():
    assert maybe_initialize_distributed({}) is False
    assert maybe_initialize_distributed({"SLURM_STEP_NUM_TASKS": "1"}) is False
    assert maybe_initialize_distributed({"SLURM_STEP_NUM_TASKS": "not a number"}) is False
    assert maybe_initialize_distributed({"SLURM_NTASKS": "4"}) is False  # the batch shell of a 4-task job
    assert spans_processes({"SLURM_STEP_NUM_TASKS": "4"}) and spans_processes({"LOOPC_COORDINATOR": "h:1234"})


def test_coordinator_without_process_count_is_a_clear_error():
    with pytest.raises(TrainError, match="LOOPC_NUM_PROCESSES"):
        maybe_initialize_distributed({"LOOPC_COORDINATOR": "localhost:1234"})


SCRIPT = textwrap.dedent("""
    import json, numpy as np, jax
    from loopc.runtime.train.trainer import train_model
    rng = np.random.default_rng(0)
    x = rng.normal(size=(203, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    r = train_model(x[:160], y[:160], x[160:], y[160:], task="binary_classification", num_classes=None,
                    architecture={"kind": "mlp", "hidden": [4]}, optimizer={"name": "adam", "lr": 0.05},
                    schedule={"kind": "constant"}, training={"epochs": 3, "batch_size": 30, "seed": 1})
    print(json.dumps({"devices": r.devices, "local": jax.local_device_count(),
                      "val": [h["val_loss"] for h in r.history]}))
""")


def _run(devices: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}",
           "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_local_devices_shard_the_batch_and_match_one_device():
    one, two = _run(1), _run(2)
    assert one["devices"] == 1 and two["devices"] == 2 and two["local"] == 2
    # 160 rows in batches of 30: the ragged last batch is masked on both devices
    assert two["val"] == pytest.approx(one["val"], rel=1e-4)
