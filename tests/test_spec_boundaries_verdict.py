"""The drift report and the monitor state, specified as the documents they write (drift.json, monitors/<name>.json)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest
from drift_support import table_report

from loopc.runtime.monitor.profile import build_profile
from loopc.runtime.monitor.verdict import MonitorError, cooldown_allows, record_trigger


@pytest.fixture(scope="module")
def profile() -> dict:
    table = pa.table({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    return build_profile(table, {"x": {"type": "float"}, "c": {"type": "category"}}, np.linspace(0, 1, 100))


def test_an_insufficient_report_is_a_complete_document(profile):
    report = table_report(profile, pa.table({"x": [1.0], "c": ["a"]}), data_drift=None, min_rows=2)
    assert report.to_dict() == {
        "breach": False, "status": "insufficient_data", "rows": 1, "columns": {}, "drifted": [], "prediction": None,
        "quality": [], "performance": [], "reasons": ["insufficient data: 1 rows < min_rows 2; no verdict"],
        "notes": [], "summary": "insufficient data: 1 rows < min_rows 2; no verdict",
    }  # fmt: skip


def test_column_statistics_carry_both_null_rates(profile):
    live = pa.table({"x": pa.array([1.0, None, 3.0, 4.0]), "c": ["a", "b", None, "a"]})
    columns = table_report(profile, live, data_drift=None).columns
    assert (columns["x"]["null_rate"], columns["x"]["ref_null_rate"], columns["x"]["kind"]) == (0.25, 0.0, "numeric")
    assert (columns["c"]["null_rate"], columns["c"]["kind"], columns["c"]["reasons"]) == (0.25, "categorical", [])
    assert columns["x"]["drifted"] is False


def test_prediction_drift_defaults_to_psi_at_0_2_and_says_when_it_is_not_measured(profile):
    live = pa.table({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    measured = table_report(profile, live, np.linspace(0, 1, 100), data_drift=None, prediction_drift={})
    assert measured.prediction == {"method": "psi", "max": 0.2, "statistic": pytest.approx(0.0), "drifted": False,
                                   "note": ""}  # fmt: skip
    missing = table_report(profile, live, None, data_drift=None, prediction_drift={"method": "js", "max": 0.5})
    assert missing.prediction == {"method": "js", "max": 0.5, "statistic": None, "drifted": False,
                                  "note": "not measured: no live predictions were given"}  # fmt: skip
    no_reference = {**profile, "predictions": None}
    blind = table_report(no_reference, live, np.zeros(100), data_drift=None, prediction_drift={})
    assert blind.prediction["note"] == "not measured: the reference profile has no predictions"
    assert table_report(profile, live, np.zeros(100), data_drift=None).prediction is None


def test_every_performance_rule_and_bound_is_checked_and_recorded(profile):
    live = pa.table({"x": np.arange(100.0), "c": ["a", "b"] * 50})
    rules = [{"metric": "auc", "min": 0.7, "max": 0.95}, {"metric": "brier", "min": None, "max": 0.1}]
    report = table_report(profile, live, data_drift=None, performance=rules, metrics={"auc": 0.99, "brier": 0.05})
    assert report.performance == [
        {"metric": "auc", "value": 0.99, "bound": 0.7, "passed": True, "status": "passed", "detail": "auc 0.99 >= min 0.7"},
        {"metric": "auc", "value": 0.99, "bound": 0.95, "passed": False, "status": "failed",
         "detail": "auc 0.99 > max 0.95"},
        {"metric": "brier", "value": 0.05, "bound": 0.1, "passed": True, "status": "passed",
         "detail": "brier 0.05 <= max 0.1"},
    ]  # fmt: skip
    unknown = table_report(profile, live, data_drift=None, performance=rules, metrics=None)
    assert unknown.performance[0] == {"metric": "auc", "status": "unknown", "passed": None,
                                      "detail": "auc: no labelled live rows yet"}  # fmt: skip


def test_errors_name_the_missing_columns(profile):
    with pytest.raises(MonitorError) as error:
        table_report(profile, pa.table({"z": [1]}), data_drift=None)
    assert str(error.value) == ("columns c, x of the reference profile are missing from the live rows; "
                                "the monitor source must carry every profiled column")  # fmt: skip
    with pytest.raises(MonitorError) as error:
        table_report(profile, pa.table({"x": [1.0], "c": ["a"]}), data_drift={"columns": ["q", "p"]})
    assert str(error.value) == "data_drift.columns p, q are not in the reference profile; profiled columns: c, x"


def test_record_trigger_writes_the_time_in_utc_and_counts_triggers(tmp_path):
    state = tmp_path / "monitors" / "m.json"
    record_trigger(state, 86400.0 + 3661.0, details={"run_id": "r1"})
    record_trigger(state, 2 * 86400.0)
    assert json.loads(state.read_text(encoding="utf-8")) == {
        "last_trigger": 172800.0, "last_trigger_utc": "1970-01-03T00:00:00Z", "triggers": 2, "details": {"run_id": "r1"}}
    record_trigger(state, 90061.0)
    assert json.loads(state.read_text(encoding="utf-8"))["last_trigger_utc"] == "1970-01-02T01:01:01Z"


def test_an_unreadable_or_non_object_state_is_an_error_with_the_fix(tmp_path):
    broken = tmp_path / "m.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(MonitorError, match=r"^cannot read monitor state .*m\.json: .*; delete the file to reset"):
        cooldown_allows(broken, 60, 0.0)
    broken.write_text("[1]", encoding="utf-8")
    with pytest.raises(MonitorError) as error:
        cooldown_allows(broken, 60, 0.0)
    assert str(error.value) == f"monitor state {broken} is not a JSON object; delete it to reset the cooldown"
    assert cooldown_allows(tmp_path / "never.json", 60, 0.0)
