"""No feature matrix is written: train and evaluate apply the fitted transform where they read the rows
(steps/matrices). What they give equals what the features step's written matrices gave: the old way, kept
here as the reference (each split's rows read whole through the transform, the profile observed by the
features step's batches and counted over the train rows read whole)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_data_path import COLUMNS, PROFILED, random_table, run_until, write_project

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data.rows import ValidatedRows
from loopc.runtime.data.split_record import ASSIGNMENT, SPLITS
from loopc.runtime.execution.runner import StepFailed
from loopc.runtime.monitor.profile import ProfileSketch, complete_profile, numeric_values
from loopc.runtime.steps import matrices
from loopc.runtime.steps.common import evaluation, group_columns, label_vector, load_bundle
from loopc.runtime.steps.matrices import MatrixSource, build_matrices, held_in_memory, split_predictions
from loopc.runtime.steps.model import KeySpill
from loopc.runtime.steps.split_rows import open_split, split_batches
from loopc.runtime.steps.split_scores import score_every_split, score_split
from loopc.runtime.train.checkpoint import load_params
from loopc.runtime.train.inputs import prepare_training_data
from loopc.runtime.train.predict import predict
from loopc.runtime.train.trainer import train_model

GATE = {"slices": [{"column": "region", "metric": "accuracy", "min": 0.0, "min_rows": 1}]}


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """validate -> evaluate on one file of row groups of 700 rows, ``id`` a key column (evaluate writes it)."""
    root = tmp_path_factory.mktemp("matrices")
    write_project(root, [random_table(4300, 1)])
    spec = root / "pipeline.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        'id: {"type": "string", "nullable": false}', 'id: {"type": "string", "nullable": false, "unique": true}'),
        encoding="utf-8")
    records = run_until(root, "evaluate.m")
    state = root / ".loopc"
    features = state / records["features.m"]["artifact"]
    source = MatrixSource(state, records["features.m"]["outputs"]["split_artifact"], features)
    return root, records, source, old_splits(source)


def old_splits(source: MatrixSource) -> dict[str, dict]:
    """Each split's rows read whole, and the matrix and labels the features step wrote for them."""
    rows, assignment, _ = open_split(source.state, source.state / source.split_artifact)
    fitted, labels = source.fitted(), source.labels()
    splits = {}
    for index, split in enumerate(SPLITS):
        table = rows.read(list(rows.names), np.asarray(assignment) == index)
        splits[split] = {"table": table, "x": np.ascontiguousarray(fitted.apply_columns(table).T),
                         "y": label_vector(table.column(labels["label"]), labels["task"], labels["classes"])}
    return splits


def test_the_features_step_writes_no_matrix_and_observes_the_profile(loop):
    root, records, source, old = loop
    assert sorted(p.name for p in source.features_dir.iterdir() if not p.name.startswith(("_", "outputs"))) == [
        "columns.json", "labels.json", "profile_points.json", "transform.json"]
    outputs = records["features.m"]["outputs"]
    assert outputs["rows"] == {s: len(old[s]["y"]) for s in SPLITS} and outputs["features"] == source.fitted().dim
    observed = json.loads((source.features_dir / "profile_points.json").read_text(encoding="utf-8"))
    assert observed["rows"] == len(old["train"]["y"]) and sorted(observed["columns"]) == PROFILED
    values, nulls = numeric_values(old["train"]["table"].column("a"))
    assert observed["columns"]["a"]["moments"]["count"] == len(values) and observed["columns"]["a"]["nulls"] == nulls
    assert len(observed["columns"]["b"]["points"]) > 100 and "le" not in observed["columns"]["b"]  # not counted
    assert observed["columns"]["cat"]["categories"]  # a categorical column's final sketch


def test_the_matrices_are_those_the_features_step_wrote_and_held_in_memory(loop, tmp_path):
    _, _, source, old = loop
    built = build_matrices(source, SPLITS, tmp_path)
    for split in SPLITS:
        assert type(built[split].x) is np.ndarray and built[split].x.dtype == np.float32
        assert built[split].y.dtype == np.float32
        assert np.array_equal(built[split].x, old[split]["x"]) and np.array_equal(built[split].y, old[split]["y"])
    assert list(tmp_path.iterdir()) == []


def test_matrices_beyond_their_share_of_the_budget_are_memory_mapped_in_the_scratch_folder(loop, tmp_path,
                                                                                          monkeypatch):
    _, _, source, old = loop
    monkeypatch.setattr(matrices, "BLOCK_ROWS", 100)  # several blocks a batch, a ragged last one
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # batches of about 2,000 rows across row groups of 700
    monkeypatch.setattr(matrices, "MATRIX_SHARE", 0.01)  # 10 KB: less than any split's matrix
    built = build_matrices(source, ("train", "valid"), tmp_path, tag=".3")
    for split in ("train", "valid"):
        assert isinstance(built[split].x, np.memmap) and Path(built[split].x.filename) == tmp_path / f"x_{split}.3.npy"
        assert built[split].x.dtype == np.float32 and built[split].y.dtype == np.float32
        assert np.array_equal(built[split].x, old[split]["x"]) and np.array_equal(built[split].y, old[split]["y"])
    untagged = build_matrices(source, ("valid",), tmp_path)["valid"]
    assert Path(untagged.x.filename) == tmp_path / "x_valid.npy"


def test_a_later_split_goes_to_disk_first_and_never_takes_memory_from_an_earlier_one(loop, tmp_path, monkeypatch):
    _, _, source, old = loop
    counts, dim = source.split_counts(), source.fitted().dim
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    for fits, on_disk in ((("train",), ("valid", "test")), (("train", "valid"), ("test",))):
        held = sum(counts[s] for s in fits) * dim * 4  # the budget's share holds exactly these splits' matrices
        monkeypatch.setattr(matrices, "MATRIX_SHARE", (held + 0.5) / (1 << 20))
        (tmp_path / str(len(fits))).mkdir()
        built = build_matrices(source, SPLITS, tmp_path / str(len(fits)))
        assert [s for s in SPLITS if type(built[s].x) is np.ndarray] == list(fits)
        assert [s for s in SPLITS if isinstance(built[s].x, np.memmap)] == list(on_disk)
        for split in SPLITS:
            assert np.array_equal(built[split].x, old[split]["x"]), split


def test_a_matrix_is_held_in_memory_up_to_exactly_its_share_of_the_budget(monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    share = int(matrices.MATRIX_SHARE * (1 << 20))
    assert held_in_memory(share // 16, 4) and not held_in_memory(share // 16 + 1, 4)


@pytest.mark.parametrize("third", [0, 1, 2])
def test_one_process_of_several_keeps_its_train_rows_and_counts_every_train_row(loop, tmp_path, monkeypatch, third):
    _, _, source, old = loop
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # several batches: rows before, inside and after the range
    train_rows, seen = len(old["train"]["y"]), []
    lo, hi = third * train_rows // 3, (third + 1) * train_rows // 3
    built = build_matrices(source, ("train", "valid"), tmp_path, keep={"train": (lo, hi)},
                           hook=lambda batch, part: seen.append((batch.column_names, int((part == 0).sum()))),
                           hook_columns=("b",))
    assert built["train"].start == lo and np.array_equal(built["train"].x, old["train"]["x"][lo:hi])
    assert np.array_equal(built["train"].y, old["train"]["y"])  # every label: the global statistics
    assert np.array_equal(built["valid"].x, old["valid"]["x"]) and built["valid"].start == 0
    assert sum(count for _, count in seen) == train_rows and all("b" in names for names, _ in seen)
    whole = prepare_training_data(old["train"]["x"], old["train"]["y"], old["valid"]["x"], old["valid"]["y"],
                                  "binary_classification", None, {}, None, rows=(lo, hi))
    shard = prepare_training_data(built["train"].x, built["train"].y, built["valid"].x, built["valid"].y,
                                  "binary_classification", None, {}, None, rows=(lo, hi))
    assert np.array_equal(shard[0][0], whole[0][0]) and np.array_equal(shard[0][1], whole[0][1])


@pytest.mark.parametrize("rows", [(5, 900), (0, 900)])  # a range that starts at 0 is not every row either
def test_predictions_of_one_process_rows_are_read_again_from_the_split_bit_for_bit(loop, tmp_path, monkeypatch, rows):
    root, records, source, old = loop
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    arch, task = bundle.model["architecture"], bundle.task
    expected = predict(bundle.params, arch, task, old["train"]["x"])
    part = build_matrices(source, ("train",), tmp_path, keep={"train": rows})["train"]
    assert np.array_equal(split_predictions(source, "train", part, bundle.params, arch, task), expected)
    whole = build_matrices(source, ("train",), tmp_path)["train"]
    assert np.array_equal(split_predictions(source, "train", whole, bundle.params, arch, task), expected)


def test_train_gives_the_params_and_the_profile_of_the_written_matrices(loop, tmp_path):
    root, records, source, old = loop
    artifact = root / ".loopc" / records["train.m"]["artifact"]
    model = json.loads((artifact / "model.json").read_text(encoding="utf-8"))
    result = train_model(old["train"]["x"], old["train"]["y"], old["valid"]["x"], old["valid"]["y"],
                         task=model["task"], num_classes=None, architecture=model["architecture"],
                         optimizer=model["optimizer"], schedule=model["schedule"], training=model["training"],
                         precision=model["precision"], checkpoint_dir=tmp_path / "checkpoint")
    params = load_params(artifact / "params.npz")
    assert params.keys() == result.params.keys()
    for name, layer in result.params.items():
        for leaf, value in layer.items():
            assert np.array_equal(np.asarray(params[name][leaf]), np.asarray(value)), (name, leaf)
    train = old["train"]
    sketch = ProfileSketch({c: COLUMNS[c] for c in PROFILED}, len(train["y"]))
    for batch in split_batches(source.state, source.split_artifact, "train", PROFILED):  # the features step's
        sketch.observe(batch)
    sketch.count(train["table"].select(PROFILED))
    profile = complete_profile(sketch.sketches(), len(train["y"]), predict(params, model["architecture"],
                                                                           model["task"], train["x"]))
    text = json.dumps(profile, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"  # compact
    assert (artifact / "profile.json").read_text(encoding="utf-8") == text


def test_evaluate_gives_the_metrics_and_predictions_of_the_written_matrices(loop):
    root, records, _, old = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    evaluated = root / ".loopc" / records["evaluate.m"]["artifact"]
    test = old["test"]
    pred = predict(bundle.params, bundle.model["architecture"], bundle.task, test["x"])
    expected = {**evaluation(bundle.task, test["y"], pred, group_columns(test["table"], GATE), GATE, None),
                "split": "test"}
    assert json.loads((evaluated / "metrics.json").read_text(encoding="utf-8")) == json.loads(json.dumps(expected))
    for split in SPLITS:
        written = pq.read_table(evaluated / f"predictions_{split}.parquet")
        assert written.column_names == ["id", "label", "score"], split
        assert written.column("id").to_pylist() == old[split]["table"].column("id").to_pylist(), split
        assert np.array_equal(written.column("label").to_numpy(), old[split]["y"]), split
        scores = predict(bundle.params, bundle.model["architecture"], bundle.task, old[split]["x"])
        assert np.array_equal(written.column("score").to_numpy(), scores), split


def test_the_train_step_predicts_every_split_and_evaluate_takes_them_scoring_only_what_is_missing(loop):
    root, records, source, old = loop
    model_dir = root / ".loopc" / records["train.m"]["artifact"]
    bundle = load_bundle(model_dir)
    stored = bundle.stored_predictions(source.split_artifact)
    assert sorted(stored) == sorted(SPLITS)
    assert bundle.stored_predictions(source.split_artifact + "0") == {}  # of other rows: none
    for split in SPLITS:
        assert np.array_equal(stored[split], predict(bundle.params, bundle.model["architecture"], bundle.task,
                                                     old[split]["x"])), split
    args = (source.state, source.split_artifact, bundle)
    scored = score_every_split(*args, gate=GATE, group_split="test", keys=[])
    for known in (stored, {s: stored[s] for s in ("train", "valid")}):  # a model trained before it stored test's
        reused = score_every_split(*args, gate=GATE, group_split="test", keys=[], known=known)
        for split in SPLITS:
            assert np.array_equal(reused.predictions[split], scored.predictions[split]), split
            assert np.array_equal(reused.labels[split], scored.labels[split]), split
        assert reused.groups.keys() == scored.groups.keys()
        assert all(np.array_equal(reused.groups[n], scored.groups[n]) for n in scored.groups)
    with pytest.raises(StepFailed, match="stored predictions of the valid split hold 3 rows"):
        score_every_split(*args, gate=GATE, group_split="test", keys=[], known={"valid": stored["valid"][:3]})


@pytest.mark.parametrize("extra", [1, -1])
def test_rows_that_no_longer_match_the_split_counts_fail_the_build_naming_the_cause(loop, tmp_path, extra):
    _, _, source, _ = loop
    split_dir = tmp_path / "split"
    shutil.copytree(source.state / source.split_artifact, split_dir)
    record = json.loads((split_dir / "split.json").read_text(encoding="utf-8"))
    record["counts"]["valid"] += extra  # more rows recorded than read, or fewer
    (split_dir / "split.json").write_text(json.dumps(record), encoding="utf-8")
    changed = MatrixSource(source.state, str(split_dir), source.features_dir)
    assert changed.split_counts() == record["counts"]
    with pytest.raises(StepFailed, match="the rows changed while they were read: run again") as failed:
        build_matrices(changed, ("train", "valid"), tmp_path)
    assert f"its record says {record['counts']}" in str(failed.value)
    assert f"'valid': {record['counts']['valid'] - extra}" in str(failed.value)


def test_spilled_keys_come_back_in_order_and_a_split_without_rows_gets_their_columns(tmp_path):
    spill = KeySpill(tmp_path)
    assert list(spill.batches("train")) == []  # no key columns at all
    spill.add("train", pa.table({"id": ["a", "b"]}))
    spill.add("train", pa.table({"id": ["c"]}))
    assert pa.concat_tables(spill.batches("train")).column("id").to_pylist() == ["a", "b", "c"]
    empty = list(spill.batches("valid"))
    assert [t.num_rows for t in empty] == [0] and empty[0].column_names == ["id"]


def test_the_observed_profile_rebuilds_a_counter_that_sketches_as_the_one_process_sketch():
    rng = np.random.default_rng(4)
    values = rng.normal(5, 3, 3000)
    values[::17] = np.nan
    table = pa.table({"x": values, "none": pa.nulls(3000, pa.float64()), "k": rng.choice(["p", "q"], 3000),
                      "n": rng.integers(0, 9, 3000)})
    specs = {"x": {"type": "float"}, "none": {"type": "float"}, "k": {"type": "string"}, "n": {"type": "int"}}
    parts = [table.slice(0, 1100), table.slice(1100, 1900)]
    alone = ProfileSketch(specs, 3000, sample_rows=500)
    later = ProfileSketch(specs, 3000, sample_rows=500)
    for part in parts:
        alone.observe(part)
        later.observe(part)
    observed = json.loads(json.dumps(later.observed()))
    assert observed["columns"]["none"]["points"] == [] and observed["columns"]["none"]["moments"]["low"] is None
    rebuilt = ProfileSketch.from_observed(observed)
    assert rebuilt.numeric == alone.numeric == ["n", "none", "x"] and rebuilt.rows == 3000
    for part in reversed(parts):  # any batching and order
        alone.count(part)
        rebuilt.count(part.select(rebuilt.numeric))
    assert json.dumps(rebuilt.sketches(), sort_keys=True) == json.dumps(alone.sketches(), sort_keys=True)
    assert rebuilt.sketches()["x"]["le"][-1] == int(np.isfinite(values).sum())


EVALUATE_ALONE = """
import runpy, sys
sys.argv = ["loopc.runtime", "run-step", sys.argv[1], "--run-id", "r1", "--root", sys.argv[2]]
try:
    runpy.run_module("loopc.runtime", run_name="__main__", alter_sys=True)
except SystemExit as exit:
    assert not exit.code, exit.code
print(sorted({m.split(".")[0] for m in sys.modules} & {"jax", "jaxlib", "optax"}))
"""


def test_evaluate_of_a_model_holding_every_splits_predictions_imports_no_jax(loop, tmp_path):
    root, records, _, _ = loop
    project = tmp_path / "project"
    shutil.copytree(root, project)
    state = project / ".loopc"
    shutil.rmtree(state / records["evaluate.m"]["artifact"])
    (state / "runs" / "r1" / "evaluate.m.json").unlink()
    plan_file = compile_local(project / "pipeline.yaml")[0].train_plan
    step = next(s for s in json.loads(plan_file.read_text(encoding="utf-8"))["steps"] if s["id"] == "evaluate.m")
    done = subprocess.run([sys.executable, "-c", EVALUATE_ALONE, str(plan_file.parent / step["file"]), str(project)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
    again = json.loads((state / "runs" / "r1" / "evaluate.m.json").read_text(encoding="utf-8"))
    assert again["status"] == "done" and again["outputs"] == records["evaluate.m"]["outputs"]


def _reassigned(source: MatrixSource, folder: Path, moves: dict[int, int]) -> str:
    """A copy of the split artifact whose rows of split index ``a`` go to ``b`` for each ``a: b`` of ``moves``."""
    shutil.copytree(source.state / source.split_artifact, folder)
    _, assignment, record = open_split(source.state, source.state / source.split_artifact)
    moved = np.asarray(assignment).copy()
    for old_index, new_index in moves.items():
        moved[np.asarray(assignment) == old_index] = new_index
    np.save(folder / ASSIGNMENT, moved)
    record.pop("assignment_artifact", None)  # the copy holds its own assignment
    (folder / "split.json").write_text(json.dumps(record), encoding="utf-8")
    return str(folder)


def test_score_split_scores_only_unknown_models_and_counts_the_batches_it_read(loop):
    root, records, source, old = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    stored = bundle.stored_predictions(source.split_artifact)["test"]
    fresh = predict(bundle.params, bundle.model["architecture"], bundle.task, old["test"]["x"])
    args = (source.state, source.split_artifact, "test")
    mixed = score_split(*args, [bundle, bundle], labels_by=bundle, gate=GATE, known=[None, stored])
    assert np.array_equal(mixed.predictions[0], fresh) and mixed.predictions[1] is stored
    assert np.array_equal(mixed.labels, old["test"]["y"]) and np.array_equal(mixed.groups["region"], np.asarray(
        old["test"]["table"].column("region").to_pylist(), dtype=object).astype(str))
    wanted = sorted({*bundle.fitted.input_columns, "label", "region"})
    assert mixed.batches == sum(1 for _ in split_batches(*args, wanted)) > 1
    labels_only = score_split(*args, [bundle], labels_by=bundle, gate=GATE, known=[stored])
    assert labels_only.predictions[0] is stored and np.array_equal(labels_only.labels, old["test"]["y"])
    assert labels_only.batches == sum(1 for _ in split_batches(*args, ["label", "region"]))
    with pytest.raises(StepFailed, match=rf"stored predictions of model 'm' on the test split hold {len(stored) - 1} "
                                         rf"rows, the split {len(stored)}; run the step that wrote them again"):
        score_split(*args, [bundle], labels_by=bundle, known=[stored[1:]])
    with pytest.raises(ValueError):  # one known entry per model
        score_split(*args, [bundle, bundle], labels_by=bundle, known=[stored])
    unlabelled = dataclasses.replace(bundle, model={**bundle.model, "label": "no_such_column"})
    assert score_split(*args, [bundle], labels_by=unlabelled, known=[stored]).labels is None


def test_a_split_without_rows_scores_to_empty_float32_labels_and_predictions(loop, tmp_path):
    root, records, source, old = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    no_test = _reassigned(source, tmp_path / "split", {2: 1})
    scores = score_split(source.state, no_test, "test", [bundle], labels_by=bundle, gate=GATE)
    assert scores.rows == 0 and scores.batches == 0 and scores.groups == {}
    assert scores.labels.dtype == np.float32 and scores.labels.shape == (0,)
    assert scores.predictions[0].shape == (0,)


def test_every_split_is_scored_when_the_first_split_has_no_rows_and_keys_go_to_their_sink(loop, tmp_path):
    root, records, source, old = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    no_train = _reassigned(source, tmp_path / "split", {0: 1})  # train's rows join valid
    sunk = {s: [] for s in SPLITS}
    scored = score_every_split(source.state, no_train, bundle, gate=GATE, group_split="test", keys=["id"],
                               key_sink=lambda split, keys: sunk[split].append(keys))
    assert scored.labels["train"].dtype == np.float32 and scored.labels["train"].shape == (0,)
    assert scored.predictions["train"].shape == (0,) and sunk["train"] == []
    valid = pa.concat_tables([old["train"]["table"], old["valid"]["table"]]).sort_by("id")  # rows in id order
    got = pa.concat_tables(sunk["valid"]).column("id").to_pylist()
    assert sorted(got) == valid.column("id").to_pylist() and len(scored.labels["valid"]) == len(got)
    assert pa.concat_tables(sunk["test"]).column("id").to_pylist() == old["test"]["table"].column("id").to_pylist()
    assert np.array_equal(scored.labels["test"], old["test"]["y"])
    assert np.array_equal(scored.predictions["test"], predict(bundle.params, bundle.model["architecture"],
                                                              bundle.task, old["test"]["x"]))
    assert scored.batches == sum(1 for _ in open_split(source.state, Path(no_train))[0].batches(
        sorted({*bundle.fitted.input_columns, "label", "region", "id"})))
    quiet = {s: [] for s in SPLITS}
    score_every_split(source.state, no_train, bundle, gate=GATE, group_split="test", keys=[],
                      key_sink=lambda split, keys: quiet[split].append(keys))
    assert quiet == {s: [] for s in SPLITS}  # no key columns: nothing to sink


def test_evaluate_s_pass_reads_only_labels_groups_and_keys_when_every_split_is_known(loop, monkeypatch):
    root, records, source, old = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    stored = bundle.stored_predictions(source.split_artifact)
    asked, batches = [], ValidatedRows.batches
    monkeypatch.setattr(ValidatedRows, "batches", lambda rows, columns, size=None: (
        asked.append(list(columns)), batches(rows, columns, size))[1])
    args = (source.state, source.split_artifact, bundle)
    known = score_every_split(*args, gate=GATE, group_split="test", keys=["id"], known=stored)
    assert asked == [["id", "label", "region"]]
    asked.clear()
    scored = score_every_split(*args, gate=GATE, group_split="test", keys=["id"],
                               known={s: stored[s] for s in ("train", "valid")})
    assert asked == [sorted({*bundle.fitted.input_columns, "id", "label", "region"})]
    for split in SPLITS:
        assert np.array_equal(known.predictions[split], scored.predictions[split]), split
        assert np.array_equal(known.labels[split], scored.labels[split]), split


def test_stored_predictions_of_the_wrong_length_fail_before_any_row_is_read(loop, monkeypatch):
    root, records, source, _ = loop
    bundle = load_bundle(root / ".loopc" / records["train.m"]["artifact"])
    stored = bundle.stored_predictions(source.split_artifact)
    assert sorted(bundle.stored_predictions(source.split_artifact, ("test",))) == ["test"]  # only what is asked
    read = []
    monkeypatch.setattr(ValidatedRows, "batches", lambda rows, columns, size=None: read.append(columns) or iter(()))
    with pytest.raises(StepFailed, match="stored predictions of model 'm' on the test split hold"):
        score_split(source.state, source.split_artifact, "test", [bundle], labels_by=bundle, known=[stored["test"][1:]])
    with pytest.raises(StepFailed, match="stored predictions of the valid split hold"):
        score_every_split(source.state, source.split_artifact, bundle, gate=GATE, group_split="test", keys=[],
                          known={**stored, "valid": stored["valid"][:-1]})
    assert read == []
