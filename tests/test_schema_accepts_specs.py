"""The generated JSON Schema accepts what loopc accepts: editors must not flag a valid spec."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from loopc.compiler.spec.schema import spec_schema

REPO = Path(__file__).resolve().parents[1]
PIPELINES = [REPO / "specs/examples/churn/pipeline.yaml", REPO / "specs/examples/demand/pipeline.yaml",
             REPO / "tests/fixtures/selectors/breast_cancer/pipeline.yaml"]


@pytest.fixture(scope="module")
def validator():
    schema = spec_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", PIPELINES, ids=lambda p: p.parent.name)
def test_every_bundled_pipeline_file_is_valid_for_the_schema(validator, path):
    errors = [f"{'.'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(path.read_text()))]
    assert errors == []


def test_the_schema_still_refuses_a_misspelt_selector(validator):
    spec = yaml.safe_load((REPO / "tests/fixtures/selectors/breast_cancer/pipeline.yaml").read_text())
    feature = next(f for f in spec["features"].values() if "columns" in f)
    feature["columns"] = {"matches": "mean_*"}
    assert any("matches" in e.message for e in validator.iter_errors(spec))


def test_a_column_without_a_type_is_refused_unless_the_columns_come_from_a_file(validator):
    spec = yaml.safe_load((REPO / "tests/fixtures/selectors/breast_cancer/pipeline.yaml").read_text())
    del spec["datasets"]["cancer"]["columns"]["from"]
    assert list(validator.iter_errors(spec))
