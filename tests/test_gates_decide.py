"""Gate decisions: every rule, the no-champion policies and the audited override."""

from __future__ import annotations

import json

import pytest

from loopc.runtime.gate.decide import GateDecision, GateError, decide_gate, improvement

# Shaped like Gate.model_dump(mode="json") of the churn example.
CHURN_GATE = {
    "split": "test",
    "thresholds": [{"metric": "auc", "min": 0.70, "max": None}, {"metric": "log_loss", "min": None, "max": 0.60}],
    "champion": [{"metric": "auc", "min_delta": -0.005, "relative": False}],
    "slices": [{"column": "region", "metric": "auc", "min": 0.62, "max": None, "min_rows": 50}],
    "fairness": [{"column": "gender", "metric": "demographic_parity_difference", "max": 0.10}],
    "no_champion": "promote",
    "override": {"allowed": True, "require_reason": True},
}


def _result(auc=0.80, log_loss=0.45, north=0.75, south_rows=400, dpd=0.05):
    return {
        "metrics": {"auc": auc, "log_loss": log_loss},
        "slices": {"region": {"north": {"auc": north, "rows": 300}, "south": {"auc": 0.70, "rows": south_rows}}},
        "fairness": {"gender": {"demographic_parity_difference": dpd}},
    }


def gate_of(**sections) -> dict:
    """A full Gate.model_dump(mode="json") with only ``sections`` set (the rest at the spec defaults)."""
    return {"split": "test", "thresholds": [], "champion": [], "slices": [], "fairness": [], "no_champion": "promote",
            "override": {"allowed": True, "require_reason": True}, **sections}  # fmt: skip


def regression(metrics: dict) -> dict:
    return {"metrics": metrics, "slices": {}, "fairness": {}}


def _decide(candidate, champion=None, gate=CHURN_GATE, **kw):
    return decide_gate(gate, task="binary_classification", candidate=candidate, champion=champion, **kw)


def test_good_candidate_passes_every_rule():
    decision = _decide(_result(), champion=_result(auc=0.79))
    assert decision.passed and decision.status == "passed"
    assert [c.rule for c in decision.checks] == ["threshold", "threshold", "champion", "slice", "slice", "fairness"]
    assert all(c.passed for c in decision.checks)
    assert decision.summary == "passed: all 6 checks passed"


@pytest.mark.parametrize(
    ("candidate", "failed_rule", "text"),
    [
        (_result(auc=0.65), "threshold", "auc 0.65 < min 0.7"),
        (_result(log_loss=0.7), "threshold", "log_loss 0.7 > max 0.6"),
        (_result(north=0.55), "slice", "region=north: auc 0.55 < min 0.62"),
        (_result(dpd=0.2), "fairness", "gender: demographic_parity_difference 0.2 > max 0.1"),
    ],
)
def test_each_rule_can_reject(candidate, failed_rule, text):
    decision = _decide(candidate, champion=_result(auc=0.60))
    assert not decision.passed and decision.status == "rejected"
    assert [c.rule for c in decision.failures] == [failed_rule]
    assert text in decision.summary


def test_champion_comparison_with_tolerated_regression():
    assert _decide(_result(auc=0.796), champion=_result(auc=0.80)).passed  # -0.004 >= -0.005
    decision = _decide(_result(auc=0.79), champion=_result(auc=0.80))
    assert decision.status == "rejected"
    assert decision.failures[0].value == pytest.approx(-0.01)
    assert "auc 0.79 vs champion 0.8: improvement -0.01 < min_delta -0.005" in decision.summary


def test_minimize_and_relative_directions():
    assert improvement("rmse", 9.0, 10.0, relative=False, directions={"rmse": "minimize"}) == pytest.approx(1.0)
    assert improvement("mae", 1.02, 1.0, relative=True, directions={"mae": "minimize"}) == pytest.approx(-0.02)
    gate = gate_of(champion=[{"metric": "rmse", "min_delta": 0.0, "relative": False},
                             {"metric": "mae", "min_delta": -0.02, "relative": True}])  # fmt: skip
    champ = {"metrics": {"rmse": 10.0, "mae": 2.0}}
    ok = decide_gate(gate, task="regression", candidate=regression({"rmse": 9.9, "mae": 2.03}), champion=champ)
    assert ok.passed  # mae 1.5% worse is within the 2% relative tolerance
    bad = decide_gate(gate, task="regression", candidate=regression({"rmse": 9.9, "mae": 2.05}), champion=champ)
    assert [c.metric for c in bad.failures] == ["mae"]


def test_unknown_direction_is_a_clear_error_unless_given():
    gate = gate_of(champion=[{"metric": "pinball", "min_delta": 0.0, "relative": False}])
    with pytest.raises(GateError, match="no direction known for metric 'pinball'"):
        decide_gate(gate, task="regression", candidate=regression({"pinball": 1}), champion={"metrics": {"pinball": 2}})
    decision = decide_gate(
        gate, task="regression", candidate=regression({"pinball": 1}), champion={"metrics": {"pinball": 2}},
        directions={"pinball": "minimize"},
    )  # fmt: skip
    assert decision.passed


def test_small_slices_are_reported_not_failed():
    decision = _decide(_result(), champion=_result())
    decision_small = _decide(
        {**_result(), "slices": {"region": {"north": {"auc": 0.75, "rows": 300}, "south": {"auc": 0.1, "rows": 20}}}},
        champion=_result(),
    )
    assert decision.passed and decision_small.passed
    skipped = [c for c in decision_small.checks if c.skipped]
    assert [(c.scope, c.passed) for c in skipped] == [("region=south", True)]
    assert "1 slice group(s) too small to judge" in decision_small.summary


def test_missing_metric_or_slice_column_fails():
    candidate = {"metrics": {"auc": 0.8}, "slices": {}, "fairness": {}}
    decision = _decide(candidate, champion=_result())
    failed = {(c.rule, c.metric) for c in decision.failures}
    assert failed == {("threshold", "log_loss"), ("slice", "auc"), ("fairness", "demographic_parity_difference")}
    assert "log_loss was not computed" in decision.summary


@pytest.mark.parametrize(
    ("policy", "status", "passed"),
    [("promote", "passed", True), ("reject", "rejected", False), ("require_approval", "needs_approval", False)],
)
def test_no_champion_policies(policy, status, passed):
    decision = _decide(_result(), gate={**CHURN_GATE, "no_champion": policy})
    assert (decision.status, decision.passed) == (status, passed)
    assert [c.rule for c in decision.checks if c.rule == "no_champion"] == ["no_champion"]


def test_override_needs_reason_and_is_recorded():
    failing = _result(auc=0.6)
    with pytest.raises(GateError, match="needs a 'reason'"):
        _decide(failing, champion=_result(), override={"actor": "alice", "reason": "  "})
    decision = _decide(failing, champion=_result(), override={"actor": "alice", "reason": "regulator deadline"})
    assert (decision.status, decision.passed) == ("overridden", True)
    assert decision.override == {"actor": "alice", "reason": "regulator deadline"}
    assert decision.summary.startswith("overridden by alice: regulator deadline (would have failed: auc 0.6 < min 0.7")
    approval = _decide(_result(), gate={**CHURN_GATE, "no_champion": "require_approval"},
                       override={"actor": "bob", "reason": "reviewed"})  # fmt: skip
    assert approval.status == "overridden"


def test_override_forbidden_or_reasonless_by_policy():
    closed = {**CHURN_GATE, "override": {"allowed": False, "require_reason": True}}
    with pytest.raises(GateError, match="does not allow manual overrides"):
        _decide(_result(auc=0.6), gate=closed, override={"actor": "a", "reason": "r"})
    lax = {**CHURN_GATE, "override": {"allowed": True, "require_reason": False}}
    assert _decide(_result(auc=0.6), gate=lax, override={"actor": "a"}).status == "overridden"


def test_fairness_on_regression_is_an_error():
    with pytest.raises(GateError, match="classification"):
        decide_gate(CHURN_GATE, task="regression", candidate=_result(), champion=None)


def test_decision_round_trips_through_json():
    decision = _decide(_result(north=0.5), champion=_result())
    data = json.loads(json.dumps(decision.to_dict()))
    assert GateDecision.from_dict(data) == decision
    assert data["status"] == "rejected" and data["checks"][3]["scope"] == "region=north"
