"""Selectors: columns from a Parquet schema, one transform over many columns, model features by selector."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.selectors import feature_name

SHORT = Path(__file__).parent / "fixtures" / "selectors" / "breast_cancer"
MEASURES = ["radius", "texture", "perimeter", "area", "smoothness", "compactness", "concavity", "concave points",
            "symmetry", "fractal dimension"]
COLUMNS = [f"{kind} {m}" for kind in ("mean", "error", "worst") for m in MEASURES]  # scikit-learn's 30 names
SIZES = ("radius", "perimeter", "area")


def cancer_table(rows: int = 569, seed: int = 0) -> pa.Table:
    """A table with the breast-cancer columns and a binary label that depends on a few of them."""
    rng = np.random.default_rng(seed)
    data = {name: np.abs(rng.normal(10 if m in SIZES else 1, 2 if m in SIZES else 0.2, rows))
            for name in COLUMNS for m in [name.split(" ", 1)[1]]}
    signal = (data["mean radius"] - 10) / 2 + (data["worst concavity"] - 1) / 0.2 + rng.normal(0, 0.3, rows)
    return pa.table({**{k: pa.array(v) for k, v in data.items()}, "malignant": pa.array(signal > 0)})


def short_project(target: Path) -> Path:
    shutil.copytree(SHORT, target)
    (target / "data").mkdir()
    pq.write_table(cancer_table(), target / "data" / "cancer.parquet")
    return target


def long_project(short: Path, target: Path) -> Path:
    """The same pipeline written out by hand: 31 columns, 30 features, 30 names in model.features."""
    shutil.copytree(short, target, ignore=shutil.ignore_patterns("pipeline.yaml", ".loopc"))
    spec = yaml.safe_load((short / "pipeline.yaml").read_text())
    spec["datasets"]["cancer"]["columns"] = {**{c: {"type": "float"} for c in COLUMNS},
                                             "malignant": {"type": "bool", "nullable": False}}
    size = [c for c in COLUMNS if c.split(" ", 1)[1] in SIZES]
    shape = [c for c in COLUMNS if c not in size]
    spec["features"] = {**{feature_name(c): {"column": c, "transforms": [{"kind": "log", "offset": 1.0},
                                                                          {"kind": "standardize"}]} for c in size},
                        **{feature_name(c): {"column": c, "transform": "standardize"} for c in shape}}
    spec["model"]["features"] = [feature_name(c) for c in size + shape]
    (target / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def test_the_short_form_is_at_most_25_lines_and_equals_the_long_form(tmp_path: Path) -> None:
    assert len((SHORT / "pipeline.yaml").read_text().splitlines()) <= 25
    short = short_project(tmp_path / "short")
    long = long_project(short, tmp_path / "long")
    (ours,), (theirs,) = load_project(short / "pipeline.yaml"), load_project(long / "pipeline.yaml")
    assert len(ours.spec.datasets["cancer"].columns) == 31 and len(ours.spec.model.features) == 30
    assert ours.spec.datasets == theirs.spec.datasets
    assert ours.spec.features == theirs.spec.features
    assert ours.spec.model == theirs.spec.model


@pytest.mark.slow
def test_the_short_form_runs_with_the_same_metrics_as_the_long_form(tmp_path: Path) -> None:
    from loopc.compiler.cli.run import compile_local
    from loopc.runtime.execution.executor import run_plan
    from loopc.runtime.registry.connect import open_registry
    from loopc.runtime.registry.interface import CHAMPION
    from tests.test_e2e_loop import quiet

    metrics = []
    short = short_project(tmp_path / "short")
    for project in (short, long_project(short, tmp_path / "long")):
        result = run_plan(compile_local(project / "pipeline.yaml", [])[0].train_plan, project, "r1", jobs=1,
                          progress=quiet())
        assert result.ok, result.records
        evaluated = result.records["evaluate.cancer_classifier"]["outputs"]["metrics"]
        with open_registry(f"sqlite:///{project / '.loopc' / 'registry.db'}") as registry:
            assert registry.get_alias("cancer_classifier", CHAMPION).metrics == evaluated
        metrics.append(evaluated)
    assert metrics[0]["auc"] > 0.75 and set(metrics[0]) >= {"auc", "log_loss", "accuracy", "f1"}
    assert metrics[0] == pytest.approx(metrics[1], rel=1e-9, abs=1e-12)


def _errors(project: Path, replace: tuple[str, str]) -> list[tuple[str, int, int, str]]:
    spec = project / "pipeline.yaml"
    text = spec.read_text()
    assert replace[0] in text
    spec.write_text(text.replace(*replace))
    with pytest.raises(SpecErrors) as caught:
        load_project(spec)
    return [(e.code, e.line, e.column, e.message) for e in caught.value.errors]


def _line(project: Path, needle: str) -> int:
    return next(i for i, t in enumerate((project / "pipeline.yaml").read_text().splitlines(), 1) if needle in t)


@pytest.mark.parametrize(("replace", "needle", "code", "message"), [
    (("from: data/cancer.parquet", "from: data/nope.parquet"), "from: data/nope", "LPC413", "cannot read"),
    (("malignant: {nullable: false}", "malignent: {nullable: false}"), "malignent", "LPC413", "not in"),
    (('match: ["* radius", "* perimeter", "* area"]}', 'match: "x*"}'), "sizes:", "LPC413", "matches no column"),
    (("type: float, exclude", "type: string, exclude"), "shapes:", "LPC413", "matches no column"),
    (("features: [sizes, shapes]", "features: [sizes, shapez_*]"), "features: [sizes", "LPC413", "matches no"),
    (("transform: standardize}", "transform: onehot}"), "shapes:", "LPC204", "onehot needs"),
    (("{kind: log, offset: 1.0}", "{kind: nope}"), "sizes:", "", ""),
])
def test_errors_are_located_at_the_selector(tmp_path: Path, replace, needle, code, message) -> None:
    project = short_project(tmp_path / "p")
    errors = _errors(project, replace)
    line = _line(project, needle)
    assert errors and all(e[1] == line for e in errors), errors
    assert all(code in e[0] and message in e[3] for e in errors), errors


def test_a_selector_that_makes_an_existing_feature_is_an_error(tmp_path: Path) -> None:
    project = short_project(tmp_path / "p")
    errors = _errors(project, ("features:\n", "features:\n  mean_radius: {column: mean radius}\n"))
    assert [(e[0], e[1]) for e in errors] == [("LPC413", _line(project, "sizes:"))]
    assert "mean_radius" in errors[0][3]


def test_parquet_types_map_to_column_types(tmp_path: Path) -> None:
    from loopc.compiler.frontend.selectors import parquet_columns

    table = pa.table({"i": pa.array([1], pa.int8()), "u": pa.array([1], pa.uint32()), "f": pa.array([1.0]),
                      "b": pa.array([True]), "s": pa.array(["x"]), "c": pa.array(["x"]).dictionary_encode(),
                      "t": pa.array([0], pa.timestamp("ms")), "d": pa.array([0], pa.date32())})
    pq.write_table(table, tmp_path / "t.parquet")
    assert parquet_columns(tmp_path / "t.parquet") == {
        "i": {"type": "int"}, "u": {"type": "int"}, "f": {"type": "float"}, "b": {"type": "bool"},
        "s": {"type": "string"}, "c": {"type": "category"}, "t": {"type": "timestamp"}, "d": {"type": "date"}}


def _init(tmp_path: Path, table: pa.Table) -> Path:
    from loopc.compiler.cli.main import main

    pq.write_table(table, tmp_path / "cancer.parquet")
    assert main(["init", str(tmp_path / "p"), "--from-data", str(tmp_path / "cancer.parquet"),
                 "--label", "malignant"]) == 0
    return tmp_path / "p"


def test_init_from_data_writes_every_column_and_validates(tmp_path: Path) -> None:
    project = _init(tmp_path, cancer_table())
    (loaded,) = load_project(project / "pipeline.yaml")
    assert list(loaded.spec.datasets["cancer"].columns) == [*COLUMNS, "malignant"]
    assert loaded.spec.model.task == "binary_classification" and loaded.spec.model.features == [
        feature_name(c) for c in COLUMNS]
    text = (project / "pipeline.yaml").read_text()
    assert all(f"{c}: {{type: float}}" in text for c in COLUMNS)


def test_columns_written_out_are_checked_against_the_file_when_it_is_reachable(tmp_path: Path) -> None:
    project = _init(tmp_path, cancer_table())
    pq.write_table(cancer_table().drop(["worst symmetry"]), tmp_path / "cancer.parquet")
    errors = _errors(project, ("malignant: {type: bool", "malignant: {type: bool"))
    assert [(e[0], e[1]) for e in errors] == [("LPC413", _line(project, "worst symmetry:"))]
    pq.write_table(cancer_table().set_column(0, "mean radius", pa.array(["x"] * 569)), tmp_path / "cancer.parquet")
    errors = _errors(project, ("malignant: {type: bool", "malignant: {type: bool"))
    assert [(e[0], e[1]) for e in errors] == [("LPC413", _line(project, "mean radius:"))]
    assert "is string in" in errors[0][3]
    (tmp_path / "cancer.parquet").unlink()  # unreachable: the written-out columns stand
    assert len(load_project(project / "pipeline.yaml")[0].spec.datasets["cancer"].columns) == 31


def test_every_resource_default_that_reaches_a_job_is_the_documented_one() -> None:
    from loopc.compiler.plan.pipeline import StepResources
    from loopc.compiler.spec.models import parse_duration, parse_memory_mb
    from loopc.compiler.spec.reference_docs import NOTES

    documented = {f: NOTES[f"Resources.{f}"].rsplit("unset here and in the pipeline: ", 1)[1]
                  for f in ("cpus", "gpus", "memory", "time", "nodes", "retries", "retry_delay")}
    defaults = StepResources()
    assert (defaults.cpus, defaults.gpus, defaults.nodes, defaults.retries) == tuple(
        int(documented[f]) for f in ("cpus", "gpus", "nodes", "retries"))
    assert defaults.memory_mb == parse_memory_mb(documented["memory"])
    assert defaults.time_s == parse_duration(documented["time"])
    assert defaults.retry_delay_s == parse_duration(documented["retry_delay"])


def test_the_validate_cache_sees_a_changed_data_file(tmp_path: Path, monkeypatch, capsys) -> None:
    from loopc.compiler.cli.main import main

    monkeypatch.setenv("LOOPC_CACHE_DIR", str(tmp_path / "cache"))
    project = short_project(tmp_path / "p")
    assert main(["validate", str(project), "--cache"]) == 0
    assert main(["validate", str(project), "--cache"]) == 0  # a hit
    pq.write_table(cancer_table().drop(["malignant"]), project / "data" / "cancer.parquet")
    assert main(["validate", str(project), "--cache", "--format", "json"]) == 1
    assert '"LPC413"' in capsys.readouterr().out


MONITOR = """monitors:
  drift:
    source: {path: data/cancer.parquet}
    schedule: "0 * * * *"
    data_drift: {columns: COLUMNS}
"""


def _with_monitor(project: Path, columns: str) -> Path:
    spec = project / "pipeline.yaml"
    spec.write_text(spec.read_text() + MONITOR.replace("COLUMNS", columns))
    return spec


def test_a_monitors_drift_columns_take_name_patterns_in_the_datasets_order_without_the_label(tmp_path: Path) -> None:
    spec = _with_monitor(short_project(tmp_path / "p"), '["worst area", "mean *", "worst area"]')
    (project,) = load_project(spec)
    drift = project.spec.monitors["drift"].data_drift.columns
    assert drift == ["worst area"] + [c for c in COLUMNS if c.startswith("mean ")]
    spec = _with_monitor(short_project(tmp_path / "every"), '["*"]')
    (project,) = load_project(spec)
    assert project.spec.monitors["drift"].data_drift.columns == COLUMNS  # not the label, malignant


@pytest.mark.parametrize("columns", ['["nope *"]', '["mean radius", "[xy]*"]', '["*malig*"]'])
def test_a_drift_column_pattern_that_matches_nothing_is_an_error_at_its_line(tmp_path: Path, columns: str) -> None:
    project = short_project(tmp_path / "p")
    spec = _with_monitor(project, columns)
    with pytest.raises(SpecErrors) as caught:
        load_project(spec)
    errors = [e for e in caught.value.errors if e.code == "LPC413"]
    assert len(errors) == 1 and "matches no column of the model's dataset" in errors[0].message, caught.value.errors
    assert errors[0].line == _line(project, "data_drift:")


@pytest.mark.parametrize("dataset", ["[[1]]", "{zz: 1}", "nope"])
def test_a_malformed_model_dataset_beside_drift_patterns_is_a_spec_error_not_a_crash(tmp_path: Path, dataset) -> None:
    project = short_project(tmp_path / "p")
    spec = _with_monitor(project, '["mean *"]')
    spec.write_text(spec.read_text().replace("  dataset: cancer\n", f"  dataset: {dataset}\n"))
    with pytest.raises(SpecErrors) as caught:
        load_project(spec)
    assert caught.value.errors and all(e.code.startswith("LPC") for e in caught.value.errors)
