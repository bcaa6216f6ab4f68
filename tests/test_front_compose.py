"""Composition: the same trees as Hydra's compose API, positions that survive, overrides and sweeps."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.compose import compose_spec
from loopc.compiler.frontend.overrides import parse_override

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"

HYDRA_CASES = [
    ("churn", []),
    ("demand", []),
    ("churn", ["model=mlp", "model.optimizer.lr=0.01", "~monitors", "++gate.split=valid"]),
    ("churn", ["+pipeline.extra=${pipeline.name}-${model.name}", "+dataset@datasets.copy=customers"]),
    ("demand", ["model=linear", "+model@shadow_model=mlp", "pipeline.tags=[a,b]", "model.training={epochs: 3}"]),
    ("demand", ["~model", "pipeline.schedule=null", "++pipeline.owner='x@y.z'", "gate.thresholds.0.min=0.25"]),
]


def _hydra(example: str | Path, overrides: list[str]) -> dict:
    """Hydra's own composition of a config directory (an example name or a path)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_dir(config_dir=str(EXAMPLES / example), version_base=None):
            return OmegaConf.to_container(compose(config_name="pipeline", overrides=overrides), resolve=True)


@pytest.mark.parametrize(("example", "overrides"), HYDRA_CASES)
def test_composition_equals_hydra(example: str, overrides: list[str]) -> None:
    ours = compose_spec(EXAMPLES / example / "pipeline.yaml", overrides)
    assert len(ours) == 1
    assert ours[0].tree == _hydra(example, overrides)


def test_sweep_points_equal_hydra_per_point() -> None:
    points = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", ["model=logistic,mlp", "model.optimizer.lr=1e-3,1e-2"])
    assert [p.sweep_point for p in points] == [
        {"model": "logistic", "model.optimizer.lr": "1e-3"}, {"model": "logistic", "model.optimizer.lr": "1e-2"},
        {"model": "mlp", "model.optimizer.lr": "1e-3"}, {"model": "mlp", "model.optimizer.lr": "1e-2"},
    ]
    for point in points:
        singles = [f"{k}={v}" for k, v in point.sweep_point.items()]
        assert point.tree == _hydra("churn", singles)


def _where(relative: str, needle: str, offset: int = 0) -> tuple[str, int, int]:
    """(display file, line, column) of ``needle`` (+ offset columns) in an example file."""
    lines = (EXAMPLES / relative).read_text().splitlines()
    line = next(i for i, text in enumerate(lines) if needle in text)
    return relative, line + 1, lines[line].index(needle) + 1 + offset


def test_positions_map_back_to_group_files_and_pipeline() -> None:
    composed = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", display="churn/pipeline.yaml")[0]
    positions = composed.positions
    assert positions[("model", "optimizer", "lr")] == _where("churn/model/logistic.yaml", "lr: 0.05")
    assert positions[("datasets", "customers", "columns", "churned")] == _where(
        "churn/dataset/customers.yaml", "churned:")
    assert positions[("gate", "fairness", 0)] == _where("churn/pipeline.yaml", "{column: gender")


def test_override_values_map_to_the_override() -> None:
    composed = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", ["model=mlp", "model.training.epochs=3"])[0]
    assert composed.positions[("model", "training", "epochs")] == ("<override>", 2, 1)
    assert composed.positions[("model", "training", "seed")][0].endswith("model/mlp.yaml")


def test_override_error_names_the_override() -> None:
    with pytest.raises(SpecErrors) as caught:
        load_project(EXAMPLES / "churn", ["model.training.epochs=0"])
    (error,) = caught.value.errors
    assert (error.file, error.line, error.code, error.spec_path) == ("<override>", 1, "LPC105", "model.training.epochs")
    assert "model.training.epochs=0" in error.hint


def test_load_project_sweep_gives_one_spec_per_point() -> None:
    loaded = load_project(EXAMPLES / "churn" / "pipeline.yaml", ["model.optimizer.lr=0.01,0.02,0.03"])
    assert [item.spec.model.optimizer.lr for item in loaded] == [0.01, 0.02, 0.03]
    assert [item.sweep_point for item in loaded] == [{"model.optimizer.lr": v} for v in ("0.01", "0.02", "0.03")]
    assert len({item.spec_hash for item in loaded}) == 3
    assert loaded[0].root == (EXAMPLES / "churn").resolve()


def test_spec_hash_ignores_yaml_layout(tmp_path: Path) -> None:
    project = tmp_path / "churn"
    shutil.copytree(EXAMPLES / "churn", project)
    pipeline = project / "pipeline.yaml"
    text = pipeline.read_text()
    pipeline.write_text(text.replace("  owner: growth-ml@example.com\n", "").replace(
        "  name: churn\n", "  name: churn\n  # a comment moves lines\n  owner: growth-ml@example.com\n"))
    assert load_project(pipeline)[0].spec_hash == load_project(EXAMPLES / "churn")[0].spec_hash


def test_optional_missing_option_is_skipped_and_required_one_is_not(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLES / "churn", project)
    pipeline = project / "pipeline.yaml"
    text = pipeline.read_text()
    pipeline.write_text(text.replace("  - _self_", "  - optional extra: none\n  - _self_"))
    (project / "extra").mkdir()
    assert len(load_project(pipeline)) == 1
    pipeline.write_text(text.replace("  - _self_", "  - extra: none\n  - _self_"))
    with pytest.raises(SpecErrors) as caught:
        load_project(pipeline)
    assert [e.code for e in caught.value.errors] == ["LPC403"]


def test_override_in_defaults_list_replaces_a_nested_choice(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLES / "churn", project)
    (project / "model" / "optimizer").mkdir()
    (project / "model" / "optimizer" / "fast.yaml").write_text("name: adam\nlr: 0.5\n")
    (project / "model" / "optimizer" / "slow.yaml").write_text("name: sgd\nlr: 0.001\n")
    logistic = project / "model" / "logistic.yaml"
    logistic.write_text("defaults:\n  - optimizer: slow\n  - _self_\n" + logistic.read_text().replace(
        "optimizer: {name: adamw, lr: 0.05, params: {weight_decay: 0.0001}}\n", ""))
    pipeline = project / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("  - _self_", "  - override model/optimizer: fast\n  - _self_"))
    (spec,) = load_project(pipeline)
    assert (spec.spec.model.optimizer.name, spec.spec.model.optimizer.lr) == ("adam", 0.5)
    for overrides in ([], ["model/optimizer=slow"]):
        assert compose_spec(pipeline, overrides)[0].tree == _hydra(project, overrides)
    assert compose_spec(pipeline, ["model/optimizer=slow"])[0].tree["model"]["optimizer"] == {"name": "sgd", "lr": 0.001}


@pytest.mark.parametrize(("text", "prefix", "key", "package", "values"), [
    ("a.b=1", "", "a.b", None, (1,)),
    ("+a=x", "+", "a", None, ("x",)),
    ("++a=[1,2]", "++", "a", None, ([1, 2],)),
    ("~a", "~", "a", None, ()),
    ("db@src=mysql", "", "db", "src", ("mysql",)),
    ("lr=1e-3,1e-2", "", "lr", None, (0.001, 0.01)),
    ("s='a,b'", "", "s", None, ("a,b",)),
    ("e=", "", "e", None, ("",)),
])
def test_parse_override(text: str, prefix: str, key: str, package: str | None, values: tuple) -> None:
    override = parse_override(text)
    assert (override.prefix, override.key, override.package, override.values) == (prefix, key, package, values)


NESTED = {
    "pipeline.yaml": "loopc: 1\ndefaults:\n  - _self_\n  - model: mlp\n  - extra: [a, b]\n  - env@deploy: prod\n"
                     "  - optional missing: nothing\npipeline: {name: x, v: 1}\nmodel: {name: fromself}\n",
    "model/mlp.yaml": "defaults:\n  - _self_\n  - optimizer: adam\nname: mlp\nsize: ${pipeline.v}\n",
    "model/optimizer/adam.yaml": "# @package _global_\nglobal_lr: 0.1\nmodel: {lr_from_global: true}\n",
    "model/optimizer/sgd.yaml": "lr: 0.5\n",
    "extra/a.yaml": "a: 1\nshared: [1, 2]\n",
    "extra/b.yaml": "b: 2\nshared: [3]\n",
    "env/prod.yaml": "# @package foo.bar\napproval: manual\n",
    "missing/.keep": "",
}


@pytest.mark.parametrize("overrides", [[], ["model/optimizer=sgd", "extra=[b]"], ["env@deploy=prod", "+env@other=prod"],
                                       ["~model"]])
def test_nested_groups_global_packages_and_option_lists_equal_hydra(tmp_path: Path, overrides: list[str]) -> None:
    for relative, text in NESTED.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert compose_spec(tmp_path / "pipeline.yaml", overrides)[0].tree == _hydra(tmp_path, overrides)
