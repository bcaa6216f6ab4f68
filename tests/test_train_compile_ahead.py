"""Compiling ahead (before the data exists, from its shapes) leaves training nothing to compile and changes no
result; a wrong guess at the row weights costs a compile, never another model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from loopc.runtime.train import trainer
from loopc.runtime.train.trainer import compile_ahead, train_model

MLP = {"kind": "mlp", "hidden": [6], "activation": "relu", "dropout": 0.1}
ADAMW = {"name": "adamw", "lr": 0.02, "params": {"weight_decay": 0.001}, "clip_norm": 1.0}
COSINE = {"kind": "warmup_cosine", "warmup_steps": 3, "decay_rate": None}


def _data(task: str, rows: int = 200, valid: int = 60, dim: int = 4):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(rows + valid, dim)).astype(np.float32)
    if task == "multiclass_classification":
        y = np.digitize(x[:, 0], [-0.5, 0.5]).astype(np.float32)
    elif task == "regression":
        y = (3 * x[:, 0] - x[:, 1] + 10).astype(np.float32)
    else:
        y = (x[:, 0] - x[:, 2] > 0).astype(np.float32)
    return x[:rows], y[:rows], x[rows:], y[rows:]


def _settings(task: str, class_weight=None, precision: str = "float32") -> dict:
    training = {"epochs": 3, "batch_size": 32, "seed": 4, "checkpoint_every": 1, "class_weight": class_weight,
                "early_stopping": None}
    return {"task": task, "num_classes": 3 if task == "multiclass_classification" else None, "architecture": MLP,
            "optimizer": ADAMW, "schedule": COSINE, "training": training, "precision": precision}


def _train(data, settings: dict, checkpoint_dir):
    return train_model(*data, **settings, checkpoint_dir=checkpoint_dir, steps_per_call=4)


def _ahead(data, settings: dict) -> float:
    x_train, _, _, y_valid = data
    return compile_ahead(len(x_train), len(y_valid), x_train.shape[1], **settings, steps_per_call=4)


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(trainer, "_COMPILED", trainer.OrderedDict())


def _forbid_compiling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("training compiled what was compiled ahead")

    monkeypatch.setattr(trainer, "compile_pieces", refuse)
    monkeypatch.setattr(trainer, "make_evaluate", refuse)


CASES = [("binary_classification", None, "float32", 60), ("multiclass_classification", None, "float32", 60),
         ("regression", None, "float32", 60), ("binary_classification", None, "bfloat16", 60),
         ("binary_classification", None, "float32", 0), ("multiclass_classification", "balanced", "float32", 70),
         ("binary_classification", None, "float32", trainer.EVAL_CHUNK + 100)]  # validation padded to two chunks


@pytest.mark.parametrize(("task", "class_weight", "precision", "valid"), CASES)
def test_training_finds_everything_compiled_and_ends_with_the_same_params(task, class_weight, precision, valid,
                                                                          tmp_path, fresh_cache, monkeypatch):
    data, settings = _data(task, valid=valid), _settings(task, class_weight, precision)
    expected = _train(data, settings, tmp_path / "plain")
    trainer._COMPILED.clear()
    assert _ahead(data, settings) > 0
    with monkeypatch.context() as patched:
        _forbid_compiling(patched)
        ahead = _train(data, settings, tmp_path / "ahead")
    for name, leaves in expected.params.items():
        for leaf, value in leaves.items():
            assert np.array_equal(value, ahead.params[name][leaf]), f"{name}/{leaf}"
    assert [h["train_loss"] for h in ahead.history] == [h["train_loss"] for h in expected.history]


def test_weights_guessed_wrong_compile_again_with_the_same_result(tmp_path, fresh_cache):
    data, settings = _data("binary_classification"), _settings("binary_classification")
    expected = _train(data, settings, tmp_path / "plain")
    trainer._COMPILED.clear()
    _ahead(data, settings)
    weights = np.linspace(0.5, 1.5, len(data[1])).astype(np.float32)  # not all ones: a different function
    entries = len(trainer._COMPILED)
    weighted = train_model(*data, **settings, checkpoint_dir=tmp_path / "w", steps_per_call=4, sample_weight=weights)
    assert len(trainer._COMPILED) > entries  # compiled its own
    assert weighted.history[0]["train_loss"] != expected.history[0]["train_loss"]
    trainer._COMPILED.clear()
    again = train_model(*data, **settings, checkpoint_dir=tmp_path / "w2", steps_per_call=4, sample_weight=weights)
    assert [h["train_loss"] for h in again.history] == [h["train_loss"] for h in weighted.history]


def test_rows_beyond_the_device_budget_are_not_compiled_ahead(fresh_cache):
    settings = _settings("binary_classification")
    assert compile_ahead(200, 60, 4, **settings, steps_per_call=4, device_data_budget=100) == 0.0
    assert not trainer._COMPILED


def test_an_unknown_precision_is_left_to_training(fresh_cache):
    assert compile_ahead(200, 60, 4, **{**_settings("binary_classification"), "precision": "float8"}) == 0.0


SCRIPT = """
import json, numpy as np
from loopc.runtime.train import trainer
from tests.test_train_compile_ahead import _data, _settings, _ahead
data, settings = _data("binary_classification"), _settings("binary_classification")
_ahead(data, settings)
def refuse(*args, **kwargs):
    raise AssertionError("compiled again")
trainer.compile_pieces = trainer.make_evaluate = refuse
import tempfile
result = trainer.train_model(*data, **settings, checkpoint_dir=tempfile.mkdtemp(), steps_per_call=4)
print(json.dumps({"devices": result.devices, "loss": result.history[-1]["train_loss"]}))
"""


def test_two_local_devices_are_compiled_ahead_for_the_mesh():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(__file__)))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1])["devices"] == 2


def test_a_damaged_transform_fails_the_train_step_with_the_transforms_own_message(tmp_path):
    from test_data_path import random_table, run_until, write_project

    from loopc.compiler.cli.run import compile_local
    from loopc.runtime.execution.runner import run_step
    from loopc.runtime.execution.step import load_step

    write_project(tmp_path, [random_table(600, 1)])
    records = run_until(tmp_path, "features.m")
    (tmp_path / ".loopc" / records["features.m"]["artifact"] / "transform.json").write_text("{", encoding="utf-8")
    plan_file = compile_local(tmp_path / "pipeline.yaml")[0].train_plan
    record = run_step(load_step(plan_file.parent / "steps" / "train.m.json"), tmp_path, "r1")
    assert record["status"] == "failed", record
    assert record["message"].startswith("step 'train.m': fitted features are not valid JSON"), record["message"]


@pytest.mark.parametrize("record", [None, "{}", '{"counts": {"train": 5}}'], ids=["no split", "no counts", "no valid"])
def test_shapes_that_cannot_be_read_start_nothing(tmp_path, record):
    import logging

    from loopc.runtime.steps.matrices import MatrixSource
    from loopc.runtime.steps.model import CompileAhead
    from loopc.runtime.steps.split import SPLIT_FILE

    if record is not None:
        (tmp_path / "artifacts" / "sp").mkdir(parents=True)
        (tmp_path / "artifacts" / "sp" / SPLIT_FILE).write_text(record, encoding="utf-8")
    source = MatrixSource(tmp_path, "artifacts/sp", tmp_path / "no-features")
    assert CompileAhead.start(source, {}, None, logging.getLogger("test")) is None
