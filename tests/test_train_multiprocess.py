"""Two JAX processes on CPU devices (gloo collectives) train the one-process model from half the rows each."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

SCRIPT = textwrap.dedent("""
    import json, logging, sys
    import numpy as np
    from loopc.runtime.train.distributed import maybe_initialize_distributed
    maybe_initialize_distributed()
    import jax
    from loopc.runtime.train.trainer import train_model

    class Watched(np.ndarray):
        def __getitem__(self, key):
            if getattr(self, "reads", None) is not None:
                self.reads.append(repr(key))
            return super().__getitem__(key)

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    folder = sys.argv[1]
    x = np.load(f"{folder}/x_train.npy", mmap_mode="r").view(Watched)
    x.reads = []
    y = np.load(f"{folder}/y_train.npy", mmap_mode="r")
    xv, yv = np.load(f"{folder}/x_valid.npy"), np.load(f"{folder}/y_valid.npy")
    r = train_model(x, y, xv, yv, task="binary_classification", num_classes=None,
                    architecture={"kind": "mlp", "hidden": [8], "activation": "relu"},
                    optimizer={"name": "adamw", "lr": 0.03}, schedule={"kind": "warmup_cosine", "warmup_steps": 2},
                    training={"epochs": 3, "batch_size": 50, "seed": 4, "class_weight": "balanced"})
    params = {f"{k}/{leaf}": np.asarray(v).tolist() for k, layer in r.params.items() for leaf, v in layer.items()}
    print(json.dumps({"process": jax.process_index(), "count": jax.process_count(), "reads": x.reads,
                      "params": params, "val": [h["val_loss"] for h in r.history]}))
""")


def _data(folder: Path) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(437, 5)).astype(np.float32)
    y = (x[:, 0] - 0.5 * x[:, 3] > 0.3).astype(np.float32)
    for name, value in {"x_train": x[:377], "y_train": y[:377], "x_valid": x[377:], "y_valid": y[377:]}.items():
        np.save(folder / f"{name}.npy", value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        return sock.getsockname()[1]


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "LOOPC_"))}
    return {**env, "JAX_PLATFORMS": "cpu", **extra}


def _one_process(folder: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder)], env=_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _two_processes(folder: Path) -> list[tuple[dict, str]]:
    address = f"localhost:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT, str(folder)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env=_env(LOOPC_COORDINATOR=address, LOOPC_NUM_PROCESSES="2", LOOPC_PROCESS_ID=str(i)))
             for i in range(2)]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        outputs.append((json.loads(out.strip().splitlines()[-1]), err))
    return outputs


def test_two_processes_read_half_the_rows_each_and_train_the_one_process_model(tmp_path):
    _data(tmp_path)
    alone = _one_process(tmp_path)
    both = _two_processes(tmp_path)
    assert alone["count"] == 1
    for index, ((result, log), rows) in enumerate(zip(both, ["slice(0, 188, None)", "slice(188, 377, None)"])):
        assert (result["process"], result["count"]) == (index, 2)
        assert result["reads"] == [rows], "a process read feature rows outside its shard"
        assert f"process {index} of 2 trains on rows [{rows[6:9].strip(',')}" in log
        for name, value in alone["params"].items():
            np.testing.assert_allclose(result["params"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(result["val"], alone["val"], rtol=1e-5)
    assert both[0][0]["params"] == both[1][0]["params"]  # one model, replicated
