"""`loopc validate`, `schema` and `init` through the real CLI entry point; docs and schema stay in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.compiler.spec.reference_docs import iter_models, render_generated
from loopc.compiler.spec.schema import SCHEMA_FILE, schema_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "specs" / "examples"


def _run(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out, captured.err


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.iterdir() if (p / "pipeline.yaml").exists()))
def test_every_example_is_valid(example: str, capsys) -> None:
    code, out, _ = _run(["validate", str(EXAMPLES / example)], capsys)
    assert (code, out) == (0, "1 spec valid\n")


def test_validate_many_paths_overrides_and_sweeps(capsys) -> None:
    code, out, _ = _run(["validate", str(EXAMPLES), "pipeline.tags=[x]", "gate.split=valid,test"], capsys)
    assert (code, out) == (0, "4 specs valid\n")


def test_validate_json_is_empty_list_when_valid(capsys) -> None:
    code, out, _ = _run(["validate", str(EXAMPLES / "churn"), "--format", "json"], capsys)
    assert (code, json.loads(out)) == (0, [])


@pytest.mark.parametrize("args", [["validate"], ["validate", "--format", "xml", "x"], ["validate", "a=1"]])
def test_usage_errors_exit_2(args: list[str], capsys) -> None:
    code, _, err = _run(args, capsys)
    assert code == 2 and err.startswith("error:")


def test_errors_of_all_files_are_reported_together(tmp_path: Path, capsys) -> None:
    for name in ("one", "two"):
        (tmp_path / f"{name}.yaml").write_text(f"loopc: 1\npipeline: {{name: {name}, colour: red}}\n")
    code, out, _ = _run(["validate", str(tmp_path), "--format", "json"], capsys)
    errors = json.loads(out)
    assert code == 1
    assert {(Path(e["file"]).name, e["code"], e["path"]) for e in errors} >= {
        ("one.yaml", "LPC101", "pipeline.colour"), ("two.yaml", "LPC101", "pipeline.colour"),
        ("one.yaml", "LPC102", "datasets"), ("two.yaml", "LPC102", "model")}


def test_committed_schema_is_fresh() -> None:
    committed = (REPO / "specs" / "schema" / SCHEMA_FILE).read_bytes()
    assert committed == schema_text().encode("utf-8"), "run `loopc schema` and commit specs/schema/"


def test_schema_command_writes_deterministic_file(tmp_path: Path, capsys) -> None:
    assert _run(["schema", "--output", str(tmp_path)], capsys)[0] == 0
    first = (tmp_path / SCHEMA_FILE).read_bytes()
    assert _run(["schema", "--output", str(tmp_path)], capsys)[0] == 0
    assert (tmp_path / SCHEMA_FILE).read_bytes() == first and b"\r" not in first
    schema = json.loads(first)
    assert "defaults" in schema["properties"] and schema["required"] == ["loopc"]


def test_examples_reference_the_schema() -> None:
    for pipeline in EXAMPLES.glob("*/pipeline.yaml"):
        first = pipeline.read_text().splitlines()[0]
        assert first == "# yaml-language-server: $schema=../../schema/loopc.schema.json"


def test_spec_reference_is_generated_from_the_models() -> None:
    doc = (REPO / "docs" / "spec-reference.md").read_text()
    assert render_generated() in doc, "run `python -m loopc.compiler.spec.reference_docs docs/spec-reference.md`"


def test_spec_reference_mentions_every_model_field() -> None:
    doc = (REPO / "docs" / "spec-reference.md").read_text()
    for model in iter_models():
        section = doc.split(f"### {model.__name__}\n", 1)[1].split("\n### ", 1)[0]
        for name in model.model_fields:
            assert f"| `{name}` |" in section, f"{model.__name__}.{name} is not documented"


def test_init_copies_the_example(tmp_path: Path, capsys) -> None:
    target = tmp_path / "project"
    code, out, _ = _run(["init", str(target), "--example", "demand", "--no-data"], capsys)
    assert code == 0 and "created" in out
    example = (EXAMPLES / "demand" / "pipeline.yaml").read_text()
    copied = (target / "pipeline.yaml").read_text()
    assert copied == example.replace("$schema=../../schema/loopc.schema.json", "$schema=loopc.schema.json")
    assert (target / "loopc.schema.json").read_text() == schema_text()
    assert (target / "model" / "mlp.yaml").exists() and not (target / "data").exists()
    assert _run(["validate", str(target)], capsys)[:2] == (0, "1 spec valid\n")


def test_init_generates_data(tmp_path: Path, capsys) -> None:
    target = tmp_path / "churn"
    assert _run(["init", str(target)], capsys)[0] == 0
    assert list((target / "data").rglob("*.parquet"))


def test_init_refuses_a_non_empty_directory_and_unknown_examples(tmp_path: Path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    code, _, err = _run(["init", str(tmp_path)], capsys)
    assert code == 2 and "not an empty directory" in err
    code, _, err = _run(["init", str(tmp_path / "new"), "--example", "nope"], capsys)
    assert code == 2 and "churn" in err and "demand" in err
    assert not (tmp_path / "new").exists()
