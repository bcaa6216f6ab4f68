"""Sweep trials share their matrices (steps/trial_matrices): the first trial of a features artifact builds the
train and valid matrices and counts the profile, the others map the same values; an incomplete copy is built
again, concurrent trials build once, and the sweep's select step removes the copy."""

from __future__ import annotations

import json
import logging
import threading

import numpy as np
import pytest
from test_data_path import random_table, run_until, write_project

from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step
from loopc.runtime.steps.matrices import MatrixSource, build_matrices
from loopc.runtime.steps.model import _profile_counter, _reference_sketch
from loopc.runtime.steps.trial_matrices import (
    COMPLETE,
    remove_shared,
    shared_folder,
    shares,
    trial_matrices,
)
from loopc.runtime.store.artifacts import LocalArtifactStore

LOG = logging.getLogger("test_trial_matrices")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> MatrixSource:
    root = tmp_path_factory.mktemp("trials")
    write_project(root, [random_table(3100, 2)])
    records = run_until(root, "features.m")
    state = root / ".loopc"
    return MatrixSource(state, records["features.m"]["outputs"]["split_artifact"], state / records["features.m"]["artifact"])


def _counting(source: MatrixSource):
    """A fresh reference sketch and a counting hook that records how many batches it was given."""
    sketch, calls = _reference_sketch(source.features_dir), []
    count = _profile_counter(sketch)
    return sketch, calls, lambda batch, part: calls.append(len(part)) or count(batch, part)


@pytest.fixture(scope="module")
def expected(source, tmp_path_factory):
    """The matrices and counted profile of one train step outside a sweep."""
    sketch, _, count = _counting(source)
    built = build_matrices(source, ("train", "valid"), tmp_path_factory.mktemp("alone"), hook=count,
                           hook_columns=tuple(sketch.numeric))
    return built, sketch.sketches()


def _equal(got, expected) -> None:
    train, valid, columns = got
    built, counted = expected
    for split, matrix in (("train", train), ("valid", valid)):
        assert np.array_equal(np.asarray(matrix.x), built[split].x) and np.array_equal(matrix.y, built[split].y)
    assert json.loads(json.dumps(columns)) == json.loads(json.dumps(counted))


def test_the_first_trial_builds_and_shares_and_the_next_maps_the_same(source, expected, tmp_path, caplog):
    caplog.set_level(logging.INFO, LOG.name)
    first, first_calls, count = _counting(source)
    _equal(trial_matrices(tmp_path, "k", source, first, count, LOG), expected)
    assert first_calls and (shared_folder(tmp_path, "k") / COMPLETE).is_file()
    second, second_calls, count = _counting(source)
    mapped = trial_matrices(tmp_path, "k", source, second, count, LOG)
    _equal(mapped, expected)
    assert second_calls == [] and isinstance(mapped[0].x, np.memmap)  # nothing read, nothing counted again
    folder = tmp_path / "scratch" / "shared" / "matrices" / "k"  # where docs/internals.md says it is
    assert shared_folder(tmp_path, "k") == folder
    assert [r.getMessage() for r in caplog.records] == [
        f"matrices built and shared with the other trials: {folder}", f"matrices shared by an earlier trial: {folder}"]


def test_an_incomplete_copy_or_a_killed_builders_staging_is_built_again(source, expected, tmp_path):
    folder = shared_folder(tmp_path, "k")
    folder.mkdir(parents=True)
    (folder / "x_train.npy").write_bytes(b"half a file")  # no complete.json: a builder died renaming, or tampered
    folder.with_name("k.staging").mkdir()
    sketch, calls, count = _counting(source)
    _equal(trial_matrices(tmp_path, "k", source, sketch, count, LOG), expected)
    assert calls and not folder.with_name("k.staging").exists() and (folder / COMPLETE).is_file()


def test_concurrent_trials_build_once_and_get_the_same(source, expected, tmp_path):
    results, counts = {}, {}

    def trial(name: str) -> None:
        sketch, calls, count = _counting(source)
        results[name] = trial_matrices(tmp_path, "k", source, sketch, count, LOG)
        counts[name] = len(calls)

    threads = [threading.Thread(target=trial, args=(name,)) for name in ("t0", "t1", "t2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(bool(n) for n in counts.values()) == [False, False, True]  # one trial read the rows
    for got in results.values():
        _equal(got, expected)


def test_select_removes_the_copy_and_removing_none_is_fine(source, tmp_path):
    sketch, _, count = _counting(source)
    trial_matrices(tmp_path, "k", source, sketch, count, LOG)
    remove_shared(tmp_path, "k")
    assert not shared_folder(tmp_path, "k").exists()
    remove_shared(tmp_path, "k")
    remove_shared(tmp_path / "elsewhere", "k")


def test_only_a_trial_of_one_process_with_a_local_store_shares(tmp_path):
    local = LocalArtifactStore(tmp_path)
    assert shares({"trial": 0}, local, 1) and shares({"trial": 3}, local, 1)
    assert not shares({"trial": None}, local, 1)  # not a sweep
    assert not shares({"trial": 0}, local, 2)  # several JAX processes each keep their own rows
    assert not shares({"trial": 0}, object(), 1)  # a remote store: each worker its own scratch


SWEEP = """sweep:
    parameters:
      optimizer.lr: [0.01, 0.03]
    metric: val_loss
  training:"""


def test_a_sweep_shares_one_copy_and_its_select_removes_it(tmp_path):
    write_project(tmp_path, [random_table(2500, 4)])
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("training:", SWEEP, 1), encoding="utf-8")
    records = run_until(tmp_path, "select.m")
    logs = [(tmp_path / ".loopc" / "runs" / "r1" / "logs" / f"train.m.t{i}.log").read_text(encoding="utf-8")
            for i in (0, 1)]
    assert "matrices built and shared" in logs[0] and "matrices shared by an earlier trial" in logs[1]
    assert not shared_folder(tmp_path / ".loopc", records["features.m"]["key"]).exists()
    assert records["select.m"]["outputs"]["best_trial"] in ("train.m.t0", "train.m.t1")
    for trial in ("train.m.t0", "train.m.t1"):  # what benchmarks/data_path.py reads to split a train step's time
        history = json.loads((tmp_path / ".loopc" / records[trial]["artifact"] / "history.json").read_text())
        assert history["compile_seconds"] > 0 and all(h["seconds"] > 0 for h in history["history"])
        assert 0 < history["compiled_ahead_seconds"] <= history["compile_seconds"]  # while the matrices were built


@pytest.mark.parametrize("sweep", [False, True], ids=["one model", "a sweep trial"])
def test_a_profile_the_rows_no_longer_match_fails_the_step_before_training(tmp_path, sweep):
    write_project(tmp_path, [random_table(1500, 5)])
    if sweep:
        spec = tmp_path / "pipeline.yaml"
        spec.write_text(spec.read_text(encoding="utf-8").replace("training:", SWEEP, 1), encoding="utf-8")
    records = run_until(tmp_path, "features.m")
    points = tmp_path / ".loopc" / records["features.m"]["artifact"] / "profile_points.json"
    observed = json.loads(points.read_text(encoding="utf-8"))
    observed["columns"]["a"]["moments"]["count"] += 1  # the first pass saw a row the count will not
    points.write_text(json.dumps(observed), encoding="utf-8")
    plan_file = compile_local(tmp_path / "pipeline.yaml")[0].train_plan
    train = next(s for s in json.loads(plan_file.read_text(encoding="utf-8"))["steps"] if s["kind"] == "train")
    record = run_step(load_step(plan_file.parent / train["file"]), tmp_path, "r1")
    assert record["status"] == "failed"
    assert record["message"].startswith("the reference profile of model 'm': a numeric sketch counted")
    assert not list((tmp_path / ".loopc" / "scratch").rglob("checkpoint/*"))  # no epoch ran: failed before training
    assert not shared_folder(tmp_path / ".loopc", records["features.m"]["key"]).exists()  # nothing half shared
