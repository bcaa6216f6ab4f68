"""The train step run by two JAX processes (``run-step`` twice, as srun runs it): each builds only its train
rows' matrix (memory-mapped in the shared scratch folder, one file a process), process 0 counts the profile over
every train row and predicts every train row for it, read again through the transform."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from test_data_path import COLUMNS, PROFILED, random_table, run_until, write_project
from test_train_multiprocess import _env, _free_port

from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.runs import read_record
from loopc.runtime.monitor.profile import ProfileSketch, complete_profile
from loopc.runtime.steps.common import load_bundle
from loopc.runtime.steps.matrices import MatrixSource, build_matrices
from loopc.runtime.steps.split_rows import open_split, split_batches
from loopc.runtime.train.predict import predict
from loopc.runtime.train.trainer import train_model

ROWS, BUDGET = 30_000, "1M"  # a process's matrices (about 16,500 rows x 12 floats) beyond half the budget


def test_two_processes_train_from_their_rows_and_process_0_profiles_every_train_row(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    write_project(tmp_path, [random_table(ROWS, 5)])
    records = run_until(tmp_path, "features.m", "two")
    plan_file = compile_local(tmp_path / "pipeline.yaml")[0].train_plan
    [step] = [s for s in json.loads(plan_file.read_text(encoding="utf-8"))["steps"] if s["id"] == "train.m"]
    command = [sys.executable, "-m", "loopc.runtime", "run-step", str(plan_file.parent / step["file"]),
               "--run-id", "two", "--root", str(tmp_path)]
    address = f"localhost:{_free_port()}"
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(LOOPC_COORDINATOR=address, LOOPC_NUM_PROCESSES="2", LOOPC_PROCESS_ID=str(i),
                                       LOOPC_MEMORY_BUDGET=BUDGET)) for i in range(2)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err[-3000:] for _, err in outputs]
    assert [json.loads(out.strip().splitlines()[-1])["status"] for out, _ in outputs] == ["done", "worker"]
    state = tmp_path / ".loopc"
    train_rows = records["features.m"]["outputs"]["rows"]["train"]
    half = train_rows // 2
    log = "".join(out + err for out, err in outputs)
    assert f"JAX process 0 of 2: training rows [0, {half}) of {train_rows}" in log
    assert f"JAX process 1 of 2: training rows [{half}, {train_rows}) of {train_rows}" in log
    source = MatrixSource(state, records["features.m"]["outputs"]["split_artifact"],
                          state / records["features.m"]["artifact"])
    mine = build_matrices(source, ("train", "valid"), tmp_path, keep={"train": (0, half)}, tag=".0")
    assert isinstance(mine["train"].x, np.memmap)  # as each process built its own: beyond the budget's share
    trained = state / read_record(state, "two", "train.m")["artifact"]
    bundle = load_bundle(trained)
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1G")
    whole = build_matrices(source, ("train", "valid", "test"), tmp_path)
    x_train, model = whole["train"].x, bundle.model
    alone = train_model(x_train, whole["train"].y, whole["valid"].x, whole["valid"].y, task=model["task"],
                        num_classes=None, architecture=model["architecture"], optimizer=model["optimizer"],
                        schedule=model["schedule"], training=model["training"], precision=model["precision"])
    for name, layer in alone.params.items():  # trained on the rows each process built: the one-process model
        for leaf, value in layer.items():
            np.testing.assert_allclose(bundle.params[name][leaf], value, rtol=1e-5, atol=1e-6, err_msg=name)
    sketch = ProfileSketch({c: COLUMNS[c] for c in PROFILED}, train_rows)
    for batch in split_batches(state, source.split_artifact, "train", PROFILED):  # the features step's batches
        sketch.observe(batch)
    rows, assignment, _ = open_split(state, state / source.split_artifact)
    sketch.count(rows.read(PROFILED, np.asarray(assignment) == 0))
    predictions = predict(bundle.params, bundle.model["architecture"], bundle.task, x_train)
    expected = complete_profile(sketch.sketches(), train_rows, predictions)
    profile = json.loads((trained / "profile.json").read_text(encoding="utf-8"))
    assert profile == json.loads(json.dumps(expected))
    stored = bundle.stored_predictions(source.split_artifact)  # process 0 predicted every split's rows
    assert sorted(stored) == ["test", "train", "valid"]
    for split in ("train", "valid", "test"):
        expected = predict(bundle.params, bundle.model["architecture"], bundle.task, whole[split].x)
        assert np.array_equal(stored[split], expected), split
