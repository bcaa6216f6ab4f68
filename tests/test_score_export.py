"""Predictions out: the export bundle (loaded in a fresh interpreter with JAX alone), `loopc predict` and
the in-loop predictions agree to 1e-6 on the churn example; matrices follow model.features order."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from loopc.compiler.cli.main import main as loopc_main
from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.registry.interface import CHAMPION
from loopc.runtime.registry.modelcard import card_path
from loopc.runtime.score.resolve import version_card
from loopc.runtime.steps.common import load_bundle
from tests.test_e2e_loop import MODEL, generate, make_project, quiet, registry, run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

# Runs in a fresh interpreter: loopc cannot be imported there, only the bundle's own score.py.
NO_LOOPC = r"""
import importlib.abc, json, sys
class NoLoopc(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "loopc" or name.startswith("loopc."):
            raise ImportError("loopc is not installed here")
sys.meta_path.insert(0, NoLoopc())
try:
    import loopc  # noqa: F401
    raise SystemExit("loopc was importable")
except ImportError:
    pass
"""
STANDALONE = NO_LOOPC + r"""
bundle, rows, out = sys.argv[1:4]
sys.path.insert(0, bundle)
import numpy as np
import score
model = score.load(bundle)
result = model.predict_parquet(rows)
columns = json.loads(open(rows + ".json").read())
from_dict = model.predict(columns)
np.save(out, np.stack([result["score"], from_dict["score"]]))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("loopc", "pyarrow", "jax"))[:3]))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("score") / "churn")
    run(project, run_id="first")
    return project


def standalone_scores(bundle: Path, rows: Path, work: Path) -> np.ndarray:
    """The scores the bundle's own score.py gives for a Parquet file, in a fresh interpreter without loopc."""
    table = pq.read_table(rows)
    Path(f"{rows}.json").write_text(json.dumps({c: table.column(c).to_pylist() for c in table.column_names},
                                               default=str))
    out = work / "standalone.npy"
    subprocess.run([sys.executable, "-I", "-c", STANDALONE, str(bundle), str(rows), str(out)], check=True,
                   cwd=work, capture_output=True, text=True)
    parquet, columns = np.load(out)
    np.testing.assert_allclose(parquet, columns, atol=1e-6, rtol=0)
    return parquet


def champion(project: Path):
    with registry(project) as reg:
        return reg.get_alias(MODEL, CHAMPION)


def test_transform_follows_model_features_order_not_alphabetical(trained):
    version = champion(trained)
    bundle = load_bundle(trained / ".loopc" / version.artifact)
    order = [f.name for f in bundle.fitted.features]
    assert order == bundle.model["features"]
    assert order != sorted(order)


def test_model_card_shows_the_epochs_trained(trained):
    version = champion(trained)
    history = json.loads((trained / ".loopc" / version.artifact / "history.json").read_text())
    card = card_path(trained / ".loopc", MODEL, version.version).read_text()
    assert version_card(trained / ".loopc", version) == card  # scoring bundles carry the card the register step wrote
    assert f"| epochs trained (best) / configured / batch size | {len(history['history'])} ({history['best_epoch']}) / 12 /" in card


def test_evaluate_writes_every_splits_predictions_with_the_dataset_key(trained):
    import pyarrow.compute as pc

    version = champion(trained)
    record = json.loads((trained / ".loopc" / "runs" / "first" / f"evaluate.{MODEL}.json").read_text())
    folder = trained / ".loopc" / record["artifact"]
    splits = {s: pq.read_table(folder / f"predictions_{s}.parquet") for s in ("train", "valid", "test")}
    assert sum(t.num_rows for t in splits.values()) == 1500
    keys = [k for t in splits.values() for k in t.column("customer_id").to_pylist()]
    assert len(set(keys)) == len(keys) == 1500
    raw = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet")))
    test = splits["test"]
    rows = raw.filter(pc.is_in(raw.column("customer_id"), value_set=test.column("customer_id")))
    order = {k: i for i, k in enumerate(rows.column("customer_id").to_pylist())}
    rows = rows.take([order[k] for k in test.column("customer_id").to_pylist()])
    scores = load_bundle(trained / ".loopc" / version.artifact).score(rows)
    np.testing.assert_allclose(test.column("score").to_numpy(), scores, atol=1e-6, rtol=0)
    assert test.column("label").to_pylist() == [float(v) for v in rows.column("churned").to_pylist()]


def test_export_predict_and_in_loop_agree(trained, tmp_path):
    version = champion(trained)
    source = sorted((trained / "data" / "customers").glob("*.parquet"))
    rows = tmp_path / "rows.parquet"
    table = pq.read_table(source).slice(0, 700)
    pq.write_table(table, rows)
    in_loop = load_bundle(trained / ".loopc" / version.artifact).score(table)

    assert loopc_main(["export", MODEL, str(tmp_path / "bundle"), "--root", str(trained)]) == 0
    bundle = tmp_path / "bundle"
    manifest = json.loads((bundle / "bundle.json").read_text())
    assert manifest["version"] == version.version and manifest["features"] == list(_model_features(trained))
    assert (bundle / "model_card.md").read_text() == card_path(trained / ".loopc", MODEL, version.version).read_text()
    np.testing.assert_allclose(standalone_scores(bundle, rows, tmp_path), in_loop, atol=1e-6, rtol=0)

    assert loopc_main(["predict", MODEL, str(rows), "-o", str(tmp_path / "out"), "--root", str(trained),
                       "--keys", "customer_id", "--batch-id", "b1"]) == 0
    written = ds.dataset(tmp_path / "out", partitioning="hive").to_table()
    assert written.column("customer_id").to_pylist() == table.column("customer_id").to_pylist()
    np.testing.assert_allclose(written.column("score").to_numpy(), in_loop, atol=1e-6, rtol=0)
    assert set(written.column("model_version").to_pylist()) == {version.version}
    assert (tmp_path / "out" / f"version={version.version}" / "batch=b1" / "part-00000.parquet").is_file()


def test_predict_refuses_a_batch_written_twice_and_an_unknown_alias(trained, tmp_path, capsys):
    source = sorted((trained / "data" / "customers").glob("*.parquet"))[0]
    args = [str(source), "-o", str(tmp_path / "out"), "--root", str(trained), "--batch-id", "b1"]
    assert loopc_main(["predict", MODEL, *args]) == 0
    assert loopc_main(["predict", MODEL, *args]) == 1
    assert "written already" in capsys.readouterr().err
    assert loopc_main(["predict", f"{MODEL}@nosuch", *args]) == 1
    assert "no version with alias 'nosuch'" in capsys.readouterr().err
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".staging")]


def test_export_refuses_a_non_empty_folder(trained, tmp_path, capsys):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle" / "keep.txt").write_text("mine")
    assert loopc_main(["export", MODEL, str(tmp_path / "bundle"), "--root", str(trained)]) == 1
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["bundle"]
    assert (tmp_path / "bundle" / "keep.txt").read_text() == "mine"


def test_scoring_plan_partitions_name_the_version_that_produced_them(trained, tmp_path, capsys):
    project = Path(shutil.copytree(trained, tmp_path / "churn"))
    generate(project, "--drifted", "--batch", "1")
    first = run_score(project, "s1")
    assert first.ok, first.records
    assert loopc_main(["predict", MODEL, str(project / "data" / "incoming"), "-o", str(tmp_path / "cli"),
                       "--root", str(project), "--keys", "customer_id", "--batch-id", "c1"]) == 0
    v1 = champion(project).version
    plan_rows = ds.dataset(project / "predictions" / f"version={v1}" / "batch=s1").to_table()
    cli_rows = ds.dataset(tmp_path / "cli", partitioning="hive").to_table()
    assert plan_rows.num_rows == cli_rows.num_rows > 0
    np.testing.assert_allclose(plan_rows.column("score").to_numpy(), cli_rows.column("score").to_numpy(),
                               atol=1e-6, rtol=0)

    second = run(project, ["model.training.epochs=13", "deploy.shadow.min_rows=100000"], run_id="second")
    assert second.ok  # the shadow cannot pass on this split (no row_count max: validate could not warn) ...
    shadow = second.records[f"shadow.{MODEL}"]["outputs"]
    short = "fewer than deploy.shadow.min_rows 100000: no challenger can pass the shadow on this data"
    assert not shadow["passed"] and short in shadow["summary"]  # ... so its verdict and log say so
    log = (project / ".loopc" / "runs" / "second" / "logs" / f"shadow.{MODEL}.log").read_text()
    assert f"WARNING the test split has {shadow['rows']} rows, {short}" in log
    with registry(project) as reg:
        newest = max(v.version for v in reg.versions(MODEL))
    assert newest != v1
    assert loopc_main(["registry", "promote", MODEL, str(newest), "--reason", "test", "--root", str(project)]) == 0
    assert run_score(project, "s2").ok
    written = ds.dataset(project / "predictions", partitioning="hive").to_table()
    by_batch = {(b, v) for b, v in zip(written.column("batch").to_pylist(), written.column("model_version").to_pylist())}
    assert by_batch == {("s1", v1), ("s2", newest)}
    assert sorted(p.name for p in (project / "predictions").iterdir()) == [f"version={v}" for v in sorted({v1, newest})]


def _predicted(trained: Path, rows: Path, out: Path) -> np.ndarray:
    assert loopc_main(["predict", MODEL, str(rows), "-o", str(out), "--root", str(trained), "--batch-id", "b"]) == 0
    return ds.dataset(out, partitioning="hive").to_table().column("score").to_numpy()


def _retyped(table, **columns):
    """``table`` with some columns replaced (same values, other Parquet types)."""
    for name, array in columns.items():
        table = table.set_column(table.column_names.index(name), name, array)
    return table


def test_scoring_casts_input_to_the_declared_types_as_training_did(trained, tmp_path):
    import pyarrow.compute as pc

    bundle = load_bundle(trained / ".loopc" / champion(trained).artifact)
    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 400)
    pq.write_table(table, tmp_path / "plain.parquet")
    retyped = _retyped(table,
                       tenure_months=pc.cast(table.column("tenure_months"), "float64"),  # declared int
                       monthly_charges=pc.cast(table.column("monthly_charges"), "string"),  # declared float
                       support_calls=pc.utf8_lpad(pc.cast(table.column("support_calls"), "string"), 4),  # "  12"
                       contract=pc.dictionary_encode(table.column("contract")))
    pq.write_table(retyped, tmp_path / "retyped.parquet")
    expected = bundle.score(table)
    np.testing.assert_allclose(_predicted(trained, tmp_path / "plain.parquet", tmp_path / "a"), expected,
                               atol=1e-6, rtol=0)
    np.testing.assert_allclose(_predicted(trained, tmp_path / "retyped.parquet", tmp_path / "b"), expected,
                               atol=1e-6, rtol=0)
    schema = json.loads((trained / ".loopc" / "bundles" / f"{MODEL}-v{champion(trained).version}" /
                         "input_schema.json").read_text())
    assert {c["name"]: c["type"] for c in schema["columns"]}["tenure_months"] == "int"


@pytest.mark.parametrize(("column", "bad", "problem"), [
    ("tenure_months", 12.5, "1 value(s) that cannot be read as int"),  # not whole: training refused it too
    ("monthly_charges", "abc", "1 value(s) that cannot be read as float, the type the model was trained on "
                               "(e.g. 'abc')"),
])
def test_a_value_that_cannot_be_cast_names_the_file_and_column(trained, tmp_path, capsys, column, bad, problem):
    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 50)
    values = [bad] + table.column(column).to_pylist()[1:]
    values = [str(v) for v in values] if isinstance(bad, str) else [float(v) for v in values]
    rows = tmp_path / "rows.parquet"
    pq.write_table(_retyped(table, **{column: pa.array(values)}), rows)
    assert loopc_main(["predict", MODEL, str(rows), "-o", str(tmp_path / "out"), "--root", str(trained)]) == 1
    err = capsys.readouterr().err
    assert f"'{rows}': column '{column}' has {problem}" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.parquet"))


REFUSED = NO_LOOPC + r"""
bundle, rows = sys.argv[1:3]
sys.path.insert(0, bundle)
import score
model = score.load(bundle)
for score_rows in (lambda: model.predict_parquet(rows), lambda: model.predict(json.loads(open(rows + ".json").read()))):
    try:
        score_rows()
        print("scored")
    except score.BundleError as exc:
        print(exc)
"""


def test_the_bundle_alone_casts_retyped_input_as_loopc_predict_does(trained, tmp_path):
    import pyarrow.compute as pc

    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 400)
    pq.write_table(table, tmp_path / "plain.parquet")
    retyped = _retyped(table,
                       tenure_months=pc.cast(table.column("tenure_months"), "float64"),  # declared int
                       monthly_charges=pc.cast(table.column("monthly_charges"), "string"),  # declared float
                       support_calls=pc.utf8_lpad(pc.cast(table.column("support_calls"), "string"), 4))
    pq.write_table(retyped, tmp_path / "retyped.parquet")
    assert loopc_main(["export", MODEL, str(tmp_path / "bundle"), "--root", str(trained)]) == 0
    assert json.loads((tmp_path / "bundle" / "bundle.json").read_text())["format"] == 2
    expected = _predicted(trained, tmp_path / "plain.parquet", tmp_path / "a")
    standalone = standalone_scores(tmp_path / "bundle", tmp_path / "retyped.parquet", tmp_path)  # Parquet and dict
    np.testing.assert_allclose(standalone, expected, atol=1e-6, rtol=0)


def test_the_bundle_alone_refuses_a_bad_value_naming_the_column(trained, tmp_path):
    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 50)
    values = ["abc"] + [str(v) for v in table.column("monthly_charges").to_pylist()[1:]]
    rows = tmp_path / "rows.parquet"
    pq.write_table(_retyped(table, monthly_charges=pa.array(values)), rows)
    Path(f"{rows}.json").write_text(json.dumps({c: _retyped(table, monthly_charges=pa.array(values)).column(c)
                                               .to_pylist() for c in table.column_names}, default=str))
    assert loopc_main(["export", MODEL, str(tmp_path / "bundle"), "--root", str(trained)]) == 0
    done = subprocess.run([sys.executable, "-I", "-c", REFUSED, str(tmp_path / "bundle"), str(rows)], check=True,
                          cwd=tmp_path, capture_output=True, text=True)
    problem = ("column 'monthly_charges' has 1 value(s) that cannot be read as float, the type the model was "
               "trained on (e.g. 'abc')")
    assert done.stdout.splitlines() == [f"'{rows}': {problem}", problem]


def test_a_file_lacking_a_column_the_model_reads_is_named(trained, tmp_path, capsys):
    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 50)
    folder = tmp_path / "rows"
    folder.mkdir()
    pq.write_table(table, folder / "a.parquet")
    pq.write_table(table.drop_columns(["support_calls"]), folder / "b.parquet")
    assert loopc_main(["predict", MODEL, str(folder), "-o", str(tmp_path / "out"), "--root", str(trained)]) == 1
    assert f"'{folder / 'b.parquet'}' lacks column(s) support_calls that the model reads" in capsys.readouterr().err


def run_score(project: Path, run_id: str):
    pipeline = compile_local(project / "pipeline.yaml", [])[0]
    return run_plan(pipeline.score_plan, project, run_id, jobs=1, progress=quiet())


def _model_features(project: Path) -> list[str]:
    version = champion(project)
    return json.loads((project / ".loopc" / version.artifact / "model.json").read_text())["features"]


def test_predict_reads_csv_rows_as_it_reads_the_same_rows_in_parquet(trained, tmp_path, capsys):
    import pyarrow.csv as pacsv

    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 300)
    pq.write_table(table, tmp_path / "rows.parquet")
    pacsv.write_csv(table, tmp_path / "rows.csv")
    expected = _predicted(trained, tmp_path / "rows.parquet", tmp_path / "a")
    np.testing.assert_allclose(_predicted(trained, tmp_path / "rows.csv", tmp_path / "b"), expected, atol=1e-6, rtol=0)
    (tmp_path / "rows.txt").write_bytes((tmp_path / "rows.csv").read_bytes())  # no telling suffix: --format says
    assert loopc_main(["predict", MODEL, str(tmp_path / "rows.txt"), "-o", str(tmp_path / "c"), "--root",
                       str(trained), "--batch-id", "b", "--format", "csv"]) == 0
    scored = ds.dataset(tmp_path / "c", partitioning="hive").to_table().column("score").to_numpy()
    np.testing.assert_allclose(scored, expected, atol=1e-6, rtol=0)
    assert loopc_main(["predict", MODEL, str(tmp_path / "rows.txt"), "-o", str(tmp_path / "d"), "--root",
                       str(trained)]) == 1  # read as Parquet, it is not one
    assert "cannot read the rows to score" in capsys.readouterr().err


def test_a_csv_row_that_cannot_be_read_after_the_first_block_is_named_not_an_internal_error(trained, tmp_path, capsys):
    import pyarrow.csv as pacsv

    table = pq.read_table(sorted((trained / "data" / "customers").glob("*.parquet"))[0]).slice(0, 300)
    pacsv.write_csv(table, tmp_path / "one.csv")
    header, *lines = (tmp_path / "one.csv").read_text().splitlines(keepends=True)
    rows = tmp_path / "rows.csv"
    rows.write_text(header + "".join(lines) * (2_000_000 // len("".join(lines)) + 1) + "1\n")  # past 1 MiB
    assert loopc_main(["predict", MODEL, str(rows), "-o", str(tmp_path / "out"), "--root", str(trained)]) == 1
    err = capsys.readouterr().err
    assert f"cannot read the rows to score at '{rows}'" in err and "internal error" not in err
    assert "Expected" in err and not any((tmp_path / "out").rglob("*.parquet"))


def test_predict_reads_a_csv_with_another_delimiter_through_csv_option(trained, tmp_path, capsys):
    import pyarrow.csv as pacsv
    import pyarrow.dataset as ds

    source = sorted((trained / "data" / "customers").glob("*.parquet"))[0]
    semicolons = tmp_path / "rows.csv"
    pacsv.write_csv(pq.read_table(source), semicolons, pacsv.WriteOptions(delimiter=";"))
    common = ["--root", str(trained), "--keys", "customer_id", "--batch-id", "b"]
    assert loopc_main(["predict", MODEL, str(source), "-o", str(tmp_path / "parquet"), *common]) == 0
    assert loopc_main(["predict", MODEL, str(semicolons), "-o", str(tmp_path / "csv"), *common,
                       "--csv-option", "delimiter=;"]) == 0
    by_key = [ds.dataset(tmp_path / name, partitioning="hive").to_table().sort_by("customer_id")
              for name in ("parquet", "csv")]
    assert by_key[0].column("score").equals(by_key[1].column("score")) and by_key[0].num_rows > 0
    capsys.readouterr()
    assert loopc_main(["predict", MODEL, str(semicolons), "-o", str(tmp_path / "x"), *common,
                       "--csv-option", "separator=;"]) == 1
    assert "unknown csv option(s) ['separator']" in capsys.readouterr().err
    assert loopc_main(["predict", MODEL, str(semicolons), "-o", str(tmp_path / "y"), *common,
                       "--csv-option", ";"]) == 2
    assert "expected KEY=VALUE, got ';'" in capsys.readouterr().err


def test_predict_scores_the_files_a_quoted_glob_names(trained, tmp_path, capsys):
    files = sorted((trained / "data" / "customers").glob("*.parquet"))[:2]
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    for index, file in enumerate(files):
        shutil.copy(file, tmp_path / f"part{index}.parquet")
    (tmp_path / "notes.txt").write_text("not data")
    common = ["--root", str(trained), "--batch-id", "b"]
    assert loopc_main(["predict", MODEL, str(tmp_path / "part*.parquet"), "-o", str(tmp_path / "out"), *common]) == 0
    assert ds.dataset(tmp_path / "out", partitioning="hive").count_rows() == rows
    capsys.readouterr()
    assert loopc_main(["predict", MODEL, str(tmp_path / "none*.parquet"), "-o", str(tmp_path / "o2"), *common]) == 1
    assert f"INPUT '{tmp_path / 'none*.parquet'}' matches no files" in capsys.readouterr().err
