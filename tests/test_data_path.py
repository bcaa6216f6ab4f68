"""The streaming data path: validate describes the rows instead of copying them, split is one byte per
row, features are fitted column by column and applied where the rows are read, and all of it gives exactly what
the old in-memory implementation gave (kept here, and only here, as the reference).
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data.checks import enforce_schema
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.rows import AHEAD_COPIES, RowFile, ValidatedRows, ahead_rows, batch_rows, open_rows
from loopc.runtime.data.split import split_table
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.execution.progress import PlainProgress
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import load_step
from loopc.runtime.features.transforms import fit_features
from loopc.runtime.monitor.profile import ProfileSketch, build_profile
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.steps.common import evaluation, group_columns, label_classes, label_vector
from loopc.runtime.steps.matrices import MatrixSource, build_matrices

SPLITS = ("train", "valid", "test")
PROFILED = ["a", "b", "c", "cat", "region"]  # the features' columns and the monitor's
COLUMNS = {
    "id": {"type": "string", "nullable": False},
    "a": {"type": "float"},
    "b": {"type": "float", "nullable": False},
    "c": {"type": "int", "nullable": False},
    "cat": {"type": "category"},
    "region": {"type": "string", "nullable": False},
    "label": {"type": "bool", "nullable": False},
}
FEATURES = {  # in name order, as the step document carries them
    "a_med": {"column": "a", "transforms": [{"kind": "impute", "strategy": "median"}, {"kind": "standardize"}]},
    "a_raw": {"column": "a", "transforms": [{"kind": "minmax"}]},
    "b_log": {"column": "b", "transforms": [{"kind": "clip", "min": 0.0}, {"kind": "log"}]},
    "b_q": {"column": "b", "transforms": [{"kind": "bucketize", "quantiles": 7}]},
    "c_mm": {"column": "c", "transforms": [{"kind": "minmax"}]},
    "cat": {"column": "cat", "transforms": [{"kind": "onehot"}]},
    "ratio": {"expr": "b / (c + 1)", "transforms": [{"kind": "standardize"}]},
}
SPEC = """\
loopc: 1
pipeline: {{name: stream}}
datasets:
  rows:
    source: {{path: {source}}}
    columns:
{columns}
    split: {{method: {method}, {split_args}train: 0.6, valid: 0.25, test: 0.15}}
features:
{features}
model:
  name: m
  task: binary_classification
  dataset: rows
  label: label
  features: [{names}]
  architecture: {{kind: linear}}
  training: {{epochs: 1, batch_size: 256, seed: 0}}
gate:
  split: test
  thresholds: [{{metric: auc, min: 0.0}}]
  slices: [{{column: region, metric: accuracy, min: 0.0, min_rows: 1}}]
  no_champion: promote
monitors:
  drift:
    source: {{path: {source}}}
    data_drift: {{columns: [a, b, cat, region]}}
    schedule: "0 * * * *"
"""


def random_table(rows: int, seed: int) -> pa.Table:
    """Floats with NaN and nulls, integers, categories with nulls, a string key: every cast and transform."""
    rng = np.random.default_rng(seed)
    a = rng.normal(3, 2, rows)
    a[rng.random(rows) < 0.05] = np.nan
    a_nulls = rng.random(rows) < 0.05
    cats = np.array(["x", "y", "z", "w"])[rng.integers(0, 4, rows)].astype(object)
    cats[rng.random(rows) < 0.1] = None
    return pa.table({
        "id": [f"k{i}" for i in rng.permutation(rows)],
        "a": pa.array(a, mask=a_nulls),
        "b": rng.exponential(1.0, rows) - 0.2,
        "c": rng.integers(0, 50, rows),
        "cat": pa.array(list(cats), pa.string()),
        "region": np.array(["north", "south"])[rng.integers(0, 2, rows)],
        "label": rng.random(rows) < 0.4,
    })


def write_project(root: Path, parts: list[pa.Table], fmt: str = "parquet", method: str = "hash",
                  features: dict | None = None) -> None:
    features = FEATURES if features is None else features
    data = root / "data"
    data.mkdir(parents=True)
    for index, part in enumerate(parts):
        if fmt == "parquet":
            pq.write_table(part, data / f"part-{index}.parquet", row_group_size=700)
        else:
            pacsv.write_csv(part, data / f"part-{index}.csv")
    columns = "\n".join(f"      {name}: {json.dumps(spec)}" for name, spec in COLUMNS.items())
    listed = "\n".join(f"  {name}: {json.dumps(spec)}" for name, spec in features.items())
    split_args = {"hash": "key: id, seed: 3, ", "time": "column: c, ", "random": "seed: 5, "}[method]
    (root / "pipeline.yaml").write_text(SPEC.format(source=f"data/*.{fmt}", columns=columns, method=method,
                                                    split_args=split_args, features=listed,
                                                    names=", ".join(features)), encoding="utf-8")


def run_until(project: Path, last: str, run_id: str = "r1", records: dict | None = None) -> dict[str, dict]:
    """Run the training plan's steps up to ``last``; steps in ``records`` (an earlier call's) are not run again."""
    plan_file = compile_local(project / "pipeline.yaml")[0].train_plan
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    records = dict(records or {})
    for step in plan["steps"]:
        if step["id"] in records:
            continue
        records[step["id"]] = run_step(load_step(plan_file.parent / step["file"]), project, run_id)
        assert records[step["id"]]["status"] == "done", records[step["id"]]
        if step["id"] == last:
            return records
    raise AssertionError(f"no step {last}")


def reference(root: Path, method: str, features: dict | None = None) -> dict:
    """The old in-memory path: whole table, cast, three split tables, fit on train, apply to each."""
    files = sorted((root / "data").iterdir())
    parts = [pq.read_table(f) if f.suffix == ".parquet" else pacsv.read_csv(f) for f in files]
    table, _ = enforce_schema(pa.concat_tables(parts, promote_options="permissive"), COLUMNS)
    split = {"hash": {"method": "hash", "key": "id", "seed": 3}, "time": {"method": "time", "column": "c"},
             "random": {"method": "random", "seed": 5}}[method] | {"train": 0.6, "valid": 0.25, "test": 0.15}
    tables = split_table(table, split)
    fitted = fit_features(tables["train"], FEATURES if features is None else features, COLUMNS)
    classes = label_classes("binary_classification", tables["train"].column("label"))
    profile = build_profile(tables["train"].select(PROFILED), {c: COLUMNS[c] for c in PROFILED})
    return {"fitted": fitted, "profile": profile, "tables": tables,
            "x": {s: fitted.apply(t) for s, t in tables.items()},
            "y": {s: label_vector(t.column("label"), "binary_classification", classes) for s, t in tables.items()}}


def assert_close(got, want, path="") -> None:
    """Equal JSON documents, floats to a relative 1e-9 (exact streaming sums round differently)."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), path
        for key in want:
            assert_close(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), path
        for index, (a, b) in enumerate(zip(got, want)):
            assert_close(a, b, f"{path}[{index}]")
    elif isinstance(want, float) and not isinstance(got, bool):
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), path
    else:
        assert got == want and type(got) is type(want), path


@pytest.mark.parametrize("fmt, method", [("parquet", "hash"), ("parquet", "time"), ("csv", "random"), ("csv", "hash")])
def test_streamed_steps_equal_the_in_memory_reference(tmp_path, monkeypatch, fmt, method):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")  # batches of 1,024 rows: many batches, across row groups
    parts = [random_table(2500, 1), random_table(1800, 2)]
    write_project(tmp_path, parts, fmt, method)
    records = run_until(tmp_path, "features.m")
    state = tmp_path / ".loopc"
    validate, split, features = (state / records[s]["artifact"] for s in ("validate.rows", "split.rows", "features.m"))
    expected = reference(tmp_path, method)
    fitted = json.loads((features / "transform.json").read_text(encoding="utf-8"))
    assert_close(fitted, expected["fitted"].to_dict())  # streamed sums differ from one batch's in the last bits
    source = MatrixSource(state, records["features.m"]["outputs"]["split_artifact"], features)
    counter = ProfileSketch.from_observed(json.loads((features / "profile_points.json").read_text(encoding="utf-8")))
    built = build_matrices(source, SPLITS, tmp_path, hook=lambda batch, part: counter.count(
        batch.select(counter.numeric).filter(pa.array(part == 0))), hook_columns=tuple(counter.numeric))
    for name in SPLITS:
        x = built[name].x
        assert x.dtype == np.float32 and x.shape == expected["x"][name].shape, name
        np.testing.assert_allclose(x, expected["x"][name], rtol=1e-6, atol=1e-6, err_msg=name)
        assert np.array_equal(built[name].y, expected["y"][name]), name
    assert_close(json.loads(json.dumps(counter.sketches())), json.loads(json.dumps(expected["profile"]["columns"])))
    assert counter.rows == expected["tables"]["train"].num_rows
    # nothing copied: validate describes the source files (a CSV is written once, cast), the split is a byte a
    # row, assigned by validate as it read the rows when it can (a hash or random split of Parquet files)
    assert (validate / "table.parquet").exists() == (fmt == "csv")
    summarised = method == "hash" or (fmt == "parquet" and method == "random")
    assert sorted(p.name for p in split.iterdir() if not p.name.startswith(("_", "outputs"))) == (
        ["split.json"] if summarised else ["assignment.npy", "split.json"])
    assert np.load((validate if summarised else split) / "assignment.npy").nbytes == 4300


def test_a_column_missing_from_one_file_reads_as_null_in_its_rows(tmp_path):
    parts = [random_table(900, 1), random_table(600, 2).drop_columns(["cat"])]
    write_project(tmp_path, parts)
    records = run_until(tmp_path, "validate.rows")
    rows = open_rows(tmp_path / ".loopc" / records["validate.rows"]["artifact"])
    cat = rows.read(["cat"]).column("cat")
    assert cat.to_pylist()[900:] == [None] * 600 and cat.to_pylist()[:900] == parts[0].column("cat").to_pylist()


def test_batches_follow_the_memory_budget(monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "64M")
    assert batch_rows(8) == (64 << 20) // 64
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    assert batch_rows(8) == 16384 and batch_rows(1 << 20) == 1024  # never fewer than 1,024 rows
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "lots")
    with pytest.raises(DataError, match="LOOPC_MEMORY_BUDGET"):
        batch_rows(8)


def _one_file(path: Path) -> ValidatedRows:
    stat = path.stat()
    file = RowFile(path.as_posix(), stat.st_size, stat.st_mtime_ns, pq.ParquetFile(path).metadata.num_rows)
    return ValidatedRows(pafs.LocalFileSystem(), (file,), {"v": {"type": "float"}}, True, ("v",))


def test_the_batch_read_ahead_is_counted_in_the_memory_budget(tmp_path, monkeypatch):
    """Batch sizes, not timing: the reader holds one batch ahead (decoded and cast), so its batches are smaller
    than ``batch_rows`` alone gives, by exactly the share the read-ahead takes of the budget."""
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1M")
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"v": np.arange(20_000.0)}), path)
    sizes = [len(batch) for _, batch in _one_file(path).batches(["v"])]
    alone = batch_rows(8)  # without read-ahead: a batch and its working copies, 8 x 8 bytes a row
    assert alone == 16384 and sizes[0] == (1 << 20) // (8 * 8 + AHEAD_COPIES * 8) == 13107 < alone
    assert sum(sizes) == 20_000 and all(size == sizes[0] for size in sizes[:-1])
    chosen = batch_rows(100)  # a caller's own size for more work a row (features: the matrix too)
    given = [len(batch) for _, batch in _one_file(path).batches(["v"], chosen)]
    assert given[0] == ahead_rows(chosen, 8) == (1 << 20) // ((1 << 20) / chosen + AHEAD_COPIES * 8) < chosen
    assert ahead_rows(100, 8) == 100  # a size below the floor is kept


def test_a_corrupt_row_group_names_the_file_the_row_group_and_the_columns(tmp_path):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"v": np.random.default_rng(0).normal(size=4000)}), path, row_group_size=1000,
                   compression="snappy")
    rows = _one_file(path)
    column = pq.ParquetFile(path).metadata.row_group(2).column(0)
    stat = path.stat()
    with open(path, "r+b") as handle:  # scramble the third row group's data page, keep size and mtime
        handle.seek(column.data_page_offset + 8)
        handle.write(b"\xff" * (column.total_compressed_size - 16))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    with pytest.raises(DataError) as error:
        list(rows.batches(["v"]))
    assert f"file '{path}' row group 2 (columns v)" in str(error.value)


def test_a_file_changed_after_validation_fails_the_read_naming_it(tmp_path):
    path = tmp_path / "v.parquet"
    pq.write_table(pa.table({"v": [1.0, 2.0]}), path)
    rows = _one_file(path)
    pq.write_table(pa.table({"v": [1.0, 2.0, 3.0]}), path)
    with pytest.raises(DataError, match=f"file '{path}' changed after it was validated"):
        rows.read(["v"])


@pytest.mark.parametrize(("gate_split", "new_rows", "gate_scores", "shadow_scores"), [
    ("test", False, [], []), ("valid", False, [], []), ("test", True, ["champion"], []),
    ("valid", True, ["champion"], ["champion"])])
def test_a_split_of_rows_validate_never_copied_is_read_by_gate_and_shadow(tmp_path, gate_split, new_rows,
                                                                          gate_scores, shadow_scores):
    """The whole loop on a Parquet source: gate, register and shadow read the rows through the split. A model
    is scored only where no earlier step predicted those rows: the train step predicted its own split (the
    challenger's; the champion's too while the data is unchanged), the gate the champion's on gate.split. Either
    way gate and shadow give what scoring the models on the whole split gives."""
    from loopc.runtime.gate.shadow import compare_shadow
    from loopc.runtime.steps.common import load_bundle

    write_project(tmp_path, [random_table(1500, 1)])
    spec = tmp_path / "pipeline.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("  split: test\n", f"  split: {gate_split}\n"),
                    encoding="utf-8")
    pipeline = compile_local(tmp_path / "pipeline.yaml")[0]
    quiet = PlainProgress(Console(file=io.StringIO()))
    first = run_plan(pipeline.train_plan, tmp_path, "one", jobs=1, progress=quiet)
    assert first.ok, first.records
    if new_rows:
        pq.write_table(random_table(600, 2), tmp_path / "data" / "part-1.parquet")
    retrained = compile_local(tmp_path / "pipeline.yaml", ["model.training.seed=1"])[0]
    second = run_plan(retrained.train_plan, tmp_path, "two", jobs=1, progress=quiet)
    assert second.ok, second.records
    gate = second.records["gate.m"]["outputs"]
    assert gate["champion_version"] == 1 and gate["decision"]  # the champion was judged on the same rows
    profile = json.loads((tmp_path / ".loopc" / first.records["train.m"]["artifact"] / "profile.json").read_text())
    assert sorted(profile["columns"]) == PROFILED and profile["predictions"]["count"] > 0
    assert gate["scored"] == gate_scores and second.records["shadow.m"]["outputs"]["scored"] == shadow_scores
    state = tmp_path / ".loopc"
    champion, challenger = (load_bundle(state / run.records["train.m"]["artifact"]) for run in (first, second))
    gated = json.loads((state / second.records["gate.m"]["artifact"] / "gate.json").read_text(encoding="utf-8"))
    rows = _split_rows(state, second.records["features.m"], gate_split)
    gate_config = {"slices": [{"column": "region", "metric": "accuracy", "min": 0.0, "min_rows": 1}]}
    expected = evaluation("binary_classification", champion.labels(rows), champion.score(rows),
                          group_columns(rows, gate_config), gate_config, None)
    assert gated["champion"] == json.loads(json.dumps(expected))
    whole = _split_rows(state, second.records["features.m"], "test")
    step = json.loads((retrained.train_plan.parent / "steps" / "shadow.m.json").read_text(encoding="utf-8"))
    expected = compare_shadow("binary_classification", champion.score(whole), challenger.score(whole),
                              challenger.labels(whole), step["config"]["shadow"]).to_dict()
    written = json.loads((state / second.records["shadow.m"]["artifact"] / "shadow.json").read_text(encoding="utf-8"))
    assert {k: written[k] for k in expected} == json.loads(json.dumps(expected)) and written["rows"] == len(whole)


def _split_rows(state: Path, features: dict, split: str) -> pa.Table:
    """Every row of ``split``, schema enforced, read whole."""
    from loopc.runtime.steps.split_rows import open_split

    rows, assignment, _ = open_split(state, state / features["outputs"]["split_artifact"])
    return enforce_schema(rows.read(list(rows.names), np.asarray(assignment) == SPLITS.index(split)), COLUMNS)[0]


def test_bytes_changed_under_the_same_size_and_mtime_are_not_registered(tmp_path):
    """A metadata key cannot see this change; register re-digests the files and refuses, naming the file."""
    write_project(tmp_path, [random_table(1500, 1)])
    run_until(tmp_path, "features.m", "first")
    path = tmp_path / "data" / "part-0.parquet"
    stat, data = path.stat(), bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    pipeline = compile_local(tmp_path / "pipeline.yaml")[0]
    quiet = PlainProgress(Console(file=io.StringIO()))
    result = run_plan(pipeline.train_plan, tmp_path, "second", jobs=1, progress=quiet)
    statuses = result.statuses()
    assert statuses["validate.rows"] == statuses["features.m"] == "cached"  # the stale key was served
    assert statuses["register.m"] == "failed" and not result.ok
    message = result.records["register.m"]["message"]
    assert f"file '{path}' no longer holds the bytes the model was trained on" in message
    with open_registry(f"sqlite:///{tmp_path / '.loopc' / 'registry.db'}") as registry:
        assert registry.versions("m") == []


def test_a_memory_mapped_matrix_reaches_training_uncopied_and_is_checked_to_its_last_row(tmp_path):
    from loopc.runtime.train.inputs import CHECK_ROWS, prepare_training_data
    from loopc.runtime.train.nets import TrainError

    rows = CHECK_ROWS + 10
    written = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(rows, 3))
    written[:] = 1.0
    written.flush()
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    train, _, _ = prepare_training_data(mapped, np.zeros(rows), mapped[:5], np.zeros(5), "binary_classification",
                                        None, {}, None)
    assert np.shares_memory(train[0], mapped)  # no host copy of the features
    written[rows - 1, 2] = np.inf  # in the last chunk only
    written.flush()
    with pytest.raises(TrainError, match="training features contain NaN or infinity"):
        prepare_training_data(np.load(tmp_path / "x.npy", mmap_mode="r"), np.zeros(rows), mapped[:5], np.zeros(5),
                              "binary_classification", None, {}, None)


def test_validating_parquet_column_by_column_gives_the_whole_table_report(tmp_path):
    """Every rule and check, violations included, on files that differ in columns: the same report."""
    import datetime as dt

    from loopc.runtime.data.batchwise import validate_source
    from loopc.runtime.data.checks import run_checks, validation_report
    from loopc.runtime.data.snapshot import read_snapshot, take_snapshot

    rng = np.random.default_rng(7)
    first = random_table(1200, 3).append_column("extra", pa.array(rng.integers(0, 3, 1200)))
    second = random_table(700, 4).drop_columns(["cat"]).set_column(2, "b", pa.array(
        [None if i % 97 == 0 else float(v) for i, v in enumerate(rng.normal(0, 5, 700))]))
    first = first.set_column(3, "c", pa.array(np.arange(1200) * 1.0))
    second = second.set_column(3, "c", pa.array([v + (0.5 if v % 50 == 0 else 0.0) for v in range(700)]))
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(first, data / "a.parquet", row_group_size=500)
    pq.write_table(second, data / "b.parquet", row_group_size=300)
    columns = {**COLUMNS, "b": {"type": "float", "nullable": False, "min": -4.0, "max": 10.0},
               "cat": {"type": "category", "nullable": False, "allowed": ["x", "y", "z"]},
               "c": {"type": "int", "nullable": False, "unique": True}, "ghost": {"type": "float"}}
    dataset = {"source": {"path": "data/*.parquet"}, "columns": columns, "checks": [
        {"kind": "row_count", "min": 5000}, {"kind": "null_rate", "column": "a", "max": 0.01},
        {"kind": "null_rate", "column": "ghost", "max": 0.5}, {"kind": "freshness", "column": "c", "max_age": "1d"},
        {"kind": "expression", "name": "pos", "expr": "b + c > 1", "min_fraction": 0.99},
        {"kind": "expression", "name": "bad", "expr": "nothere > 1"}]}
    now = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    files = read_snapshot(take_snapshot(dataset["source"], tmp_path))
    cast, violations = enforce_schema(files.table, columns, "d", files)
    expected = validation_report("d", violations, run_checks(cast, dataset["checks"], now), rows=1900)
    result = validate_source(take_snapshot(dataset["source"], tmp_path, content=False), "d", dataset, now)
    assert expected["errors"] > 8 and result.report == expected
    assert result.names == tuple(cast.column_names)
    assert [e.digest for e in result.entries] == [e.digest for e in files.entries]


def test_files_with_incompatible_column_types_fail_validation_naming_the_source(tmp_path):
    from loopc.runtime.data.batchwise import validate_source
    from loopc.runtime.data.snapshot import read_snapshot, take_snapshot

    (tmp_path / "data").mkdir()
    pq.write_table(pa.table({"c": [1, 2]}), tmp_path / "data" / "a.parquet")
    pq.write_table(pa.table({"c": ["x"]}), tmp_path / "data" / "b.parquet")
    dataset = {"source": {"path": "data/*.parquet"}, "columns": {"c": {"type": "int"}}}
    shot = take_snapshot(dataset["source"], tmp_path, content=False)
    with pytest.raises(DataError) as whole:
        read_snapshot(shot)
    with pytest.raises(DataError) as by_column:
        validate_source(shot, "d", dataset, None)
    assert "files of source 'data/*.parquet' have incompatible schemas" in str(by_column.value)
    assert str(by_column.value).split(":")[0] == str(whole.value).split(":")[0]
