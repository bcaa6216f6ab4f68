"""A monitor that cannot judge performance says so: status "unknown", a note in the summary, no pass, no breach."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from drift_support import table_report

from loopc.runtime.monitor.profile import build_profile
from loopc.runtime.steps.common import ModelBundle
from loopc.runtime.steps.monitor import LiveLabels, _performance_metrics, live_scores_needed

COLUMNS = {"amount": {"type": "float"}}
RULES = [{"metric": "auc", "min": 0.65, "max": None}]


@pytest.fixture(scope="module")
def live() -> pa.Table:
    return pa.table({"amount": np.random.default_rng(3).normal(size=400)})


@pytest.fixture(scope="module")
def profile(live: pa.Table) -> dict:
    return build_profile(live, COLUMNS, None)


def test_unjudged_performance_is_unknown_with_the_reason_in_notes_and_summary(profile, live):
    why = "the live labels could not be read: label values ['z'] were not seen in the train split"
    report = table_report(profile, live, data_drift=None, performance=RULES, metrics=None, unjudged=why)
    check = report.performance[0]
    assert check["status"] == "unknown" and check["passed"] is None
    assert not report.breach and report.status == "ok"
    assert report.notes == [f"performance not judged: auc: {why}"]
    assert report.summary.endswith(f"; performance not judged: auc: {why}")
    assert report.to_dict()["notes"] == report.notes


def test_a_metric_undefined_on_the_live_rows_is_unknown_not_passed(profile, live):
    report = table_report(profile, live, data_drift=None, performance=RULES, metrics={"auc": None})
    assert report.performance[0]["status"] == "unknown" and report.performance[0]["passed"] is None
    assert report.notes == ["performance not judged: auc: undefined on the labelled live rows"]


def test_judged_rules_are_passed_or_failed_and_only_failures_breach(profile, live):
    passed = table_report(profile, live, data_drift=None, performance=RULES, metrics={"auc": 0.65})
    assert [c["status"] for c in passed.performance] == ["passed"] and passed.performance[0]["passed"] is True
    assert not passed.breach and passed.notes == [] and "not judged" not in passed.summary
    failed = table_report(profile, live, data_drift=None, performance=RULES, metrics={"auc": 0.6499})
    assert [c["status"] for c in failed.performance] == ["failed"] and failed.breach
    assert failed.summary == "breach: performance: auc 0.6499 < min 0.65"


def _bundle(task: str, classes: list | None) -> ModelBundle:
    """The label-reading part of a model bundle (the performance path reads nothing else before scoring)."""
    return ModelBundle(path=None, params={}, model={"label": "y", "task": task}, fitted=None, classes=classes)


def _labels(bundle: ModelBundle, *batches: pa.Table) -> LiveLabels:
    """The live rows' labels, added batch by batch as the monitor reads them."""
    labels = LiveLabels(bundle)
    for batch in batches:
        labels.add(batch)
    return labels


def test_unreadable_live_labels_give_no_metrics_and_say_why():
    bundle = _bundle("multiclass_classification", ["a", "b"])
    metrics, why = _performance_metrics(bundle, _labels(bundle, pa.table({"y": ["a", "b", "z"]})),
                                        np.full((3, 2), 0.5))
    assert metrics is None
    assert why.startswith("the live labels could not be read: label values ['z'] were not seen")


def test_no_label_column_or_only_nulls_means_no_labels_yet():
    bundle = _bundle("binary_classification", None)
    assert _performance_metrics(bundle, _labels(bundle, pa.table({"x": [1.0]})), np.zeros(1)) == (
        None, "no labelled live rows yet (label column 'y')")  # fmt: skip
    nulls = pa.table({"y": pa.array([None, None], pa.bool_())})
    assert _performance_metrics(bundle, _labels(bundle, nulls), np.zeros(2))[0] is None
    assert _performance_metrics(bundle, None, None)[0] is None  # rows not scored


def test_labelled_rows_of_every_batch_are_scored_and_unlabelled_ones_left_out():
    bundle = _bundle("binary_classification", None)
    first = pa.table({"y": pa.array([True, False, None], pa.bool_())})
    second = pa.table({"y": pa.array([True, False], pa.bool_())})
    pred = np.array([0.9, 0.1, 0.0, 0.2, 0.8])  # the second batch's rows ranked wrong
    metrics, why = _performance_metrics(bundle, _labels(bundle, first, second), pred)
    assert why == "" and metrics["auc"] == 0.75 and metrics["accuracy"] == 0.5


LABELS = {"source": {"path": "labels/*.parquet"}, "predictions": "predictions", "keys": ["id"]}
DRIFT = {"method": "psi", "max": 0.2}


@pytest.mark.parametrize(("monitor", "stored", "needed"), [
    ({"labels": LABELS, "performance": RULES}, False, False),  # realized metrics come from stored predictions
    ({"labels": LABELS, "performance": RULES, "prediction_drift": DRIFT}, True, False),  # drift from stored scores
    ({"labels": LABELS, "prediction_drift": DRIFT}, False, True),  # no stored scores (multiclass, none yet)
    ({"performance": RULES}, False, True),  # performance on the live rows' own labels
    ({"prediction_drift": DRIFT}, False, True),
    ({"prediction_drift": None, "performance": []}, False, False),  # input drift only
])
def test_live_rows_are_scored_only_when_a_verdict_reads_their_scores(monitor, stored, needed):
    assert live_scores_needed(monitor, stored) is needed
