"""Spec sections that refer to each other: a monitor's labels read what scoring writes."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from test_plan_support import EXAMPLES, compose_tree, spec_from_tree

from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors

LABELS = {"source": {"path": "data/labels/*.parquet"}, "keys": ["customer_id"]}


def churn_with_labels(labels: dict, scoring: bool = True) -> dict:
    tree = copy.deepcopy(compose_tree(EXAMPLES / "churn" / "pipeline.yaml"))
    tree["monitors"]["weekly_drift"]["labels"] = labels
    if not scoring:
        del tree["scoring"]
    return tree


def test_labels_predictions_defaults_to_the_scoring_output():
    spec, _ = spec_from_tree(churn_with_labels(LABELS))
    assert spec.scoring.output == "predictions"
    assert spec.monitors["weekly_drift"].labels.predictions == "predictions"
    moved = churn_with_labels(LABELS)
    moved["scoring"]["output"] = "out/scored"
    assert spec_from_tree(moved)[0].monitors["weekly_drift"].labels.predictions == "out/scored"


def test_an_explicit_labels_predictions_is_kept():
    spec, _ = spec_from_tree(churn_with_labels({**LABELS, "predictions": "elsewhere"}))
    assert spec.monitors["weekly_drift"].labels.predictions == "elsewhere"


def test_the_monitor_step_reads_the_defaulted_folder():
    from loopc.compiler.plan.pipeline import plan_pipeline

    spec, spec_hash = spec_from_tree(churn_with_labels(LABELS))
    monitor_plan = next(p for p in plan_pipeline(spec, spec_hash=spec_hash) if p.kind == "monitor")
    assert monitor_plan.steps[0].config["monitor"]["labels"]["predictions"] == "predictions"


def write_spec(folder: Path, tree: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def line_of(path: Path, text: str) -> tuple[int, int]:
    """(line, column) of the first line holding ``text`` (1-based), at its first character."""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if text in line:
            return number, line.index(text.strip()) + 1
    raise AssertionError(f"{text!r} not in {path}")


def test_labels_without_predictions_and_without_scoring_is_a_located_error(tmp_path):
    path = write_spec(tmp_path, churn_with_labels(LABELS, scoring=False))
    with pytest.raises(SpecErrors) as caught:
        load_project(path)
    (error,) = caught.value.errors
    assert (error.code, error.spec_path) == ("LPC213", "monitors.weekly_drift.labels")
    assert (error.line, error.column) == line_of(path, "  labels:")
    assert "scoring" in error.hint and "labels.predictions" in error.hint


def _load_errors(tmp_path: Path, tree: dict) -> list:
    path = write_spec(tmp_path, tree)
    with pytest.raises(SpecErrors) as caught:
        load_project(path)
    return [(e.code, e.spec_path, e.message, e.hint) for e in caught.value.errors]


def test_labels_joined_on_a_key_scoring_does_not_write_is_a_located_error(tmp_path):
    tree = churn_with_labels({**LABELS, "keys": ["customer_id", "region"]})
    [(code, where, message, hint)] = _load_errors(tmp_path, tree)
    assert (code, where) == ("LPC213", "monitors.weekly_drift.labels.keys")
    assert "labels join on region, which scoring does not copy" in message and hint == "add region to scoring.keys"


@pytest.mark.parametrize(("task_change", "write", "window", "lacking"), [
    (None, ["score", "label", "timestamp"], None, "model_version"),
    (None, ["label", "model_version"], None, "score"),
    (None, ["score", "model_version"], "7d", "timestamp"),
    ("multiclass", ["score", "label", "model_version", "timestamp"], None, "probabilities"),
])
def test_labels_need_what_they_are_judged_from_in_scoring_write(tmp_path, task_change, write, window, lacking):
    tree = churn_with_labels({**LABELS, **({"window": window} if window else {})})
    tree["scoring"]["write"] = write
    if task_change == "multiclass":
        tree["model"]["task"] = "multiclass_classification"
        tree["gate"] = {"split": "test", "thresholds": [{"metric": "accuracy", "min": 0.5}], "no_champion": "promote"}
        tree["monitors"]["weekly_drift"]["performance"] = [{"metric": "accuracy", "min": 0.5}]
    errors = [e for e in _load_errors(tmp_path, tree) if e[0] != "LPC206"]  # multiclass on the bool label
    assert [(c, w) for c, w, _, _ in errors] == [("LPC213", "monitors.weekly_drift.labels")]
    assert errors[0][3] == f"add {lacking} to scoring.write"


def test_labels_with_what_they_need_written_are_valid(tmp_path):
    tree = churn_with_labels({**LABELS, "window": "7d"})
    load_project(write_spec(tmp_path, tree))  # the example writes score, label, model_version, timestamp


def test_the_spec_s_scoring_outputs_are_those_the_stored_predictions_table_knows():
    from typing import get_args

    from loopc.compiler.spec.models import ScoringOutput
    from loopc.runtime.data.predictions import WRITE_COLUMNS, joined_outputs

    assert set(get_args(ScoringOutput)) == set(WRITE_COLUMNS)
    assert set(joined_outputs(True, True)) | set(joined_outputs(False, False)) <= set(WRITE_COLUMNS)


@pytest.mark.parametrize(("scoring", "where", "problem"), [
    ({"write": ["score", "probabilities"]}, "scoring.write[1]",
     "only a multiclass model writes probabilities; this binary_classification model writes its score"),
    ({"keys": ["customer_id", "scored_at"]}, "scoring.keys[1]", "key 'scored_at' has the name of an output"),
    ({"keys": ["version"], "write": ["score"]}, "scoring.keys[0]", "key 'version' has the name of an output"),
])  # fmt: skip
def test_scoring_that_would_write_nothing_or_replace_a_key_is_a_located_error(tmp_path, scoring, where, problem):
    tree = copy.deepcopy(compose_tree(EXAMPLES / "churn" / "pipeline.yaml"))
    tree["scoring"].update(scoring)
    errors = _load_errors(tmp_path, tree)
    assert [(code, path) for code, path, _, _ in errors] == [("LPC218", where)]
    assert problem in errors[0][2]


def test_a_key_named_as_an_output_scoring_does_not_write_is_valid():
    tree = copy.deepcopy(compose_tree(EXAMPLES / "churn" / "pipeline.yaml"))
    tree["scoring"].update({"keys": ["customer_id", "label"], "write": ["score", "model_version"]})
    assert spec_from_tree(tree)[0].scoring.keys == ["customer_id", "label"]
