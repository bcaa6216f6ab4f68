"""Parsing with positions, and validation errors: located, tag-free paths, all collected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from omegaconf._utils import get_yaml_loader

from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.compose import ComposedSpec, compose_spec
from loopc.compiler.frontend.load import parse_spec
from loopc.compiler.spec.validate import validate_spec

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"


def test_positions_are_one_based_for_keys_and_items() -> None:
    document = parse_spec("a:\n  b: 1\n  c: [x, {d: 2}]\n", "f.yaml")
    assert document.tree == {"a": {"b": 1, "c": ["x", {"d": 2}]}}
    assert document.positions[("a",)] == ("f.yaml", 1, 1)
    assert document.positions[("a", "b")] == ("f.yaml", 2, 3)
    assert document.positions[("a", "c", 1)] == ("f.yaml", 3, 10)
    assert document.positions[("a", "c", 1, "d")] == ("f.yaml", 3, 11)


def test_anchors_aliases_and_merge_keys() -> None:
    text = "base: &b {x: 1, y: 2}\ncopy: *b\nmerged:\n  <<: *b\n  y: 3\n"
    assert parse_spec(text, "f").tree == {"base": {"x": 1, "y": 2}, "copy": {"x": 1, "y": 2}, "merged": {"x": 1, "y": 3}}


@pytest.mark.parametrize("scalar", ["1e-3", "1.5", "1_000", ".5", "2024-01-01", "true", "null", "0x1F", "-.inf", "'7'",
                                    "yes", "12:30", "1.0e+3", "+3"])
def test_scalars_load_like_omegaconf(scalar: str) -> None:
    expected = yaml.load(f"v: {scalar}", Loader=get_yaml_loader())["v"]
    assert parse_spec(f"v: {scalar}", "f").tree["v"] == expected


def test_package_header_is_read_from_leading_header_lines() -> None:
    assert parse_spec("\n# @package datasets.x\na: 1\n", "f").package == "datasets.x"
    assert parse_spec("# @other y\n# @package datasets.x\na: 1\n", "f").package == "datasets.x"
    assert parse_spec("# a comment\n# @package datasets.x\na: 1\n", "f").package is None  # as Hydra: not a header
    assert parse_spec("a: 1\n# @package datasets.x\n", "f").package is None


def test_all_duplicate_keys_are_reported() -> None:
    with pytest.raises(SpecErrors) as caught:
        parse_spec("a: 1\nb: {c: 1, c: 2}\na: 3\n", "f.yaml")
    assert [(e.code, e.line, e.column, e.spec_path) for e in caught.value.errors] == [
        ("LPC004", 2, 11, "b.c"), ("LPC004", 3, 1, "a")]


def _composed(tree: dict) -> ComposedSpec:
    base = compose_spec(EXAMPLES / "churn" / "pipeline.yaml")[0]
    return ComposedSpec(base.file, tree, base.positions)


def test_transform_errors_drop_tags_and_follow_the_shorthand() -> None:
    composed = compose_spec(EXAMPLES / "churn" / "pipeline.yaml", ["features.tenure.transforms.0.min=low"])[0]
    with pytest.raises(SpecErrors) as caught:
        validate_spec(composed)
    (error,) = caught.value.errors
    assert (error.code, error.spec_path, error.file) == ("LPC103", "features.tenure.transforms[0].min", "<override>")


def test_discriminator_tag_is_not_part_of_the_path(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    text = (EXAMPLES / "demand" / "pipeline.yaml").read_text().replace(
        "transform: {kind: hash, buckets: 16}", "transform: {kind: hash, bucket: 16}")
    pipeline.write_text(text)
    for group in ("dataset", "model"):
        (tmp_path / group).symlink_to(EXAMPLES / "demand" / group)
    with pytest.raises(SpecErrors) as caught:
        load_project(pipeline)
    (error,) = caught.value.errors
    line = text.splitlines().index("    transform: {kind: hash, bucket: 16}") + 1
    assert (error.code, error.spec_path, error.line, error.hint) == (
        "LPC101", "features.store.transform.bucket", line, "did you mean 'buckets'?")


def test_every_cross_reference_error_is_collected() -> None:
    overrides = ["model.label=tenure_months", "model.features=[tenure,nope]", "gate.thresholds.0.metric=rmse",
                 "gate.slices.0.column=country", "++monitors.weekly_drift.data_drift.columns=[zzz]"]
    with pytest.raises(SpecErrors) as caught:
        load_project(EXAMPLES / "churn", overrides)
    assert sorted(e.code for e in caught.value.errors) == ["LPC202", "LPC206", "LPC207", "LPC208", "LPC213", "LPC217"]


def test_group_folders_are_not_searched_for_pipelines(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(EXAMPLES / "churn", tmp_path / "churn", ignore=shutil.ignore_patterns("data"))
    (tmp_path / "churn" / "model" / "other.yaml").write_text("loopc: 1\n")  # a group option, not a pipeline
    loaded = load_project(tmp_path)
    assert [item.file.name for item in loaded] == ["pipeline.yaml"]
    assert loaded[0].display == str(tmp_path / "churn" / "pipeline.yaml")


def test_invalid_mapping_key_is_located_at_the_key(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline.yaml"
    text = (EXAMPLES / "churn" / "pipeline.yaml").read_text().replace("  support_calls:\n", "  Support-Calls:\n")
    pipeline.write_text(text)
    for group in ("dataset", "model"):
        (tmp_path / group).symlink_to(EXAMPLES / "churn" / group)
    with pytest.raises(SpecErrors) as caught:
        load_project(pipeline)
    line = text.splitlines().index("  Support-Calls:") + 1
    assert [(e.code, e.spec_path, e.line, e.column) for e in caught.value.errors] == [
        ("LPC106", "features.Support-Calls", line, 3)]


def test_worker_processes_give_the_same_result() -> None:
    serial = load_project(EXAMPLES, ["model.optimizer.lr=0.01,0.02"])
    parallel = load_project(EXAMPLES, ["model.optimizer.lr=0.01,0.02"], jobs=2)
    assert [(s.file, s.spec, s.spec_hash, s.sweep_point) for s in parallel] == [
        (s.file, s.spec, s.spec_hash, s.sweep_point) for s in serial]
    with pytest.raises(SpecErrors) as caught:
        load_project(EXAMPLES, ["model.optimizer.lr=-1"], jobs=2)
    assert [e.code for e in caught.value.errors] == ["LPC105", "LPC105"]  # one per pipeline file


def test_worker_count_one_per_128_files_and_jobs_capped_by_files(monkeypatch: pytest.MonkeyPatch) -> None:
    from loopc.compiler.errors import UsageError
    from loopc.compiler.spec import parallel

    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 16)
    assert [parallel.worker_count(n, None) for n in (0, 255, 256, 383, 384, 5000)] == [1, 1, 2, 2, 3, 8]
    assert parallel.worker_count(3, 5) == 3 and parallel.worker_count(0, 5) == 1
    with pytest.raises(UsageError):
        parallel.worker_count(10, 0)
