"""A signal mid-epoch: checkpoint at that step, resume there, the uninterrupted params; damaged checkpoints."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from loopc.runtime.train.checkpoint import CHECKPOINT_NAME
from loopc.runtime.train.trainer import TrainError, train_model

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    import numpy as np
    from loopc.runtime.train.preempt import Preempted
    from loopc.runtime.train.trainer import train_model

    folder, name, epoch, step = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(5)
    x = rng.normal(size=(260, 4)).astype(np.float32)
    y = (x[:, 0] - x[:, 2] > 0).astype(np.float32)
    seen = []

    def hook(e, s):
        seen.append([e, s])
        if (e, s) == (epoch, step):
            os.kill(os.getpid(), getattr(signal, name))

    kwargs = dict(task="binary_classification", num_classes=None,
                  architecture={"kind": "mlp", "hidden": [6], "dropout": 0.2},
                  optimizer={"name": "adamw", "lr": 0.02, "clip_norm": 1.0},
                  schedule={"kind": "warmup_cosine", "warmup_steps": 3},
                  training={"epochs": 4, "batch_size": 48, "seed": 9, "checkpoint_every": 2})
    out = {}
    if folder == "-":
        r = train_model(x[:200], y[:200], x[200:], y[200:], **kwargs)
    else:
        try:
            r = train_model(x[:200], y[:200], x[200:], y[200:], checkpoint_dir=folder, steps_per_call=1,
                            on_step=hook, **kwargs)
        except Preempted as stop:
            print(json.dumps({"stopped": str(stop), "seen": seen}))
            sys.exit(75)
    print(json.dumps({"params": {f"{k}/{l}": np.asarray(v).tolist() for k, d in r.params.items()
                                 for l, v in d.items()}, "seen": seen, "epochs": r.epochs_run}))
""")


def _run(folder, signal_name="SIGTERM", epoch=-1, step=-1) -> tuple[int, dict]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(folder), signal_name, str(epoch), str(step)],
                          env=env, capture_output=True, text=True)
    assert done.returncode in (0, 75), done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGUSR1"])
def test_signal_mid_epoch_saves_that_step_and_resumes_there_to_the_same_params(tmp_path, signal_name):
    _, uninterrupted = _run("-")
    code, stopped = _run(tmp_path, signal_name, epoch=1, step=2)  # epoch 2 of 5 batches, after its 2nd step
    assert code == 75 and stopped["seen"][-1] == [1, 2]
    assert f"stopped by {signal_name} in epoch 2 after step 2" in stopped["stopped"]
    manifest = json.loads((tmp_path / CHECKPOINT_NAME).read_text())
    assert manifest["checkpoints"][0]["file"] == "checkpoint-000001-00000002.npz"
    code, resumed = _run(tmp_path)
    assert code == 0 and resumed["seen"][0] == [1, 3], "the resumed run did not start at the saved step"
    assert resumed["epochs"] == 4
    assert resumed["params"] == uninterrupted["params"]  # bit-identical: JSON of the exact float32 values


def _data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(150, 3)).astype(np.float32)
    return x[:120], (x[:120, 0] > 0).astype(np.float32), x[120:], (x[120:, 0] > 0).astype(np.float32)


def _train(folder, **kwargs):
    training = {"epochs": 4, "batch_size": 32, "seed": 1, "checkpoint_every": 1}
    return train_model(*_data(), task="binary_classification", num_classes=None, architecture={"kind": "linear"},
                       optimizer={"name": "adam", "lr": 0.05}, schedule={"kind": "constant"}, training=training,
                       checkpoint_dir=folder, **kwargs)


def test_truncated_checkpoint_is_detected_and_the_previous_one_used(tmp_path, caplog):
    full = _train(None)
    _train(tmp_path, max_epochs_this_call=3)
    newest, previous = json.loads((tmp_path / CHECKPOINT_NAME).read_text())["checkpoints"]
    assert (newest["file"], previous["file"]) == ("checkpoint-000003-00000000.npz", "checkpoint-000002-00000000.npz")
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*.npz")) == [previous["file"], newest["file"]]
    data = (tmp_path / newest["file"]).read_bytes()
    (tmp_path / newest["file"]).write_bytes(data[: len(data) // 2])
    seen = []
    with caplog.at_level(logging.WARNING, logger="loopc.train.checkpoint"):
        resumed = _train(tmp_path, on_step=lambda e, s: seen.append(e))
    warning = caplog.text
    assert newest["file"] in warning and previous["file"] in warning and "truncated" in warning
    assert seen[0] == 2, "the run did not resume from the previous checkpoint (epoch 2)"
    for layer in full.params:
        for leaf in full.params[layer]:
            np.testing.assert_array_equal(resumed.params[layer][leaf], full.params[layer][leaf])


def test_every_checkpoint_damaged_is_an_error_naming_them(tmp_path):
    _train(tmp_path, max_epochs_this_call=2)
    for archive in tmp_path.glob("checkpoint-*.npz"):
        archive.write_bytes(archive.read_bytes()[:-1] + b"x")
    with pytest.raises(TrainError, match="no intact checkpoint .*checkpoint-000002.*sha256.*checkpoint-000001"):
        _train(tmp_path)
