"""Feature chains the runtime cannot fit are located spec errors at `loopc validate`, not features-step failures."""

from __future__ import annotations

import json

import pytest

from loopc.compiler.cli.main import main

SPEC = """\
loopc: 1
pipeline: {{name: chains, owner: a@b.c, risk_class: minimal, intended_use: test., targets: [local]}}
datasets:
  d:
    source: {{path: data/d.parquet}}
    columns:
      x: {{type: float}}
      y: {{type: bool}}
features:
  f:
    column: x
    transforms: {transforms}
model:
  name: m
  task: binary_classification
  dataset: d
  label: y
  features: [f]
  architecture: {{kind: linear}}
  optimizer: {{name: adam, lr: 0.01}}
  training: {{epochs: 1, batch_size: 8, seed: 0}}
"""


def _errors(tmp_path, transforms: str, capsys) -> tuple[int, list[dict]]:
    path = tmp_path / "pipeline.yaml"
    path.write_text(SPEC.format(transforms=transforms), encoding="utf-8")
    code = main(["validate", str(path), "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


@pytest.mark.parametrize("kind", ["bucketize", "onehot", "hash"])
def test_an_encoding_transform_before_another_is_located_with_its_fix(tmp_path, capsys, kind):
    first = "{kind: bucketize, quantiles: 4}" if kind == "bucketize" else kind
    code, errors = _errors(tmp_path, f"[{first}, standardize]", capsys)
    assert code == 1
    [error] = errors
    assert (error["code"], error["line"], error["path"]) == ("LPC107", 10, "features.f")
    assert error["message"] == (f"'{kind}' must be the last transform: it turns the value into one-hot columns, "
                                "which no transform takes; move it to the end of 'transforms'")


@pytest.mark.parametrize("transforms", ["[standardize, onehot]",
                                        "[{kind: clip, min: 0}, {kind: bucketize, quantiles: 3}]",
                                        "[{kind: impute, strategy: mean}, {kind: bucketize, boundaries: [0.5]}]"])
def test_an_encoding_transform_last_is_valid(tmp_path, capsys, transforms):
    assert _errors(tmp_path, transforms, capsys) == (0, [])


def test_a_constant_impute_without_a_value_is_located(tmp_path, capsys):
    code, [error] = _errors(tmp_path, "[{kind: impute, strategy: constant}, standardize]", capsys)
    assert (code, error["code"], error["line"]) == (1, "LPC107", 12)
    assert "impute strategy 'constant' needs 'value'" in error["message"]
    assert _errors(tmp_path, "[{kind: impute, strategy: constant, value: 0}]", capsys) == (0, [])
