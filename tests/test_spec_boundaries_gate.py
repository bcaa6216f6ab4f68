"""The gate's comparisons, specified at their boundaries: a value exactly at a configured bound passes.

Numbers are chosen to be exact in binary floating point (0.75 - 0.5 == 0.25), so "exactly met"
really is equality and a `>=` turned into `>` fails these tests.
"""

from __future__ import annotations

import math

import pytest

from loopc.runtime.gate.decide import GateCheck, GateDecision, GateError, check_bounds, decide_gate, improvement


def gate_of(**sections) -> dict:
    """A full Gate.model_dump(mode="json") with only ``sections`` set (the rest at the spec defaults)."""
    return {"split": "test", "thresholds": [], "champion": [], "slices": [], "fairness": [], "no_champion": "promote",
            "override": {"allowed": True, "require_reason": True}, **sections}  # fmt: skip


def result(metrics: dict, slices: dict | None = None, fairness: dict | None = None) -> dict:
    return {"metrics": metrics, "slices": slices or {}, "fairness": fairness or {}}


def decide(gate: dict, candidate: dict, champion: dict | None = None, task: str = "binary_classification", **kw):
    return decide_gate(gate, task=task, candidate=candidate, champion=champion, **kw)


# ------------------------------------------------------------------ thresholds (check_bounds)


def test_a_value_exactly_at_min_or_max_passes():
    assert check_bounds("threshold", "auc", 0.75, 0.75, None) == [
        GateCheck("threshold", "auc", 0.75, 0.75, True, "auc 0.75 >= min 0.75")]  # fmt: skip
    assert check_bounds("threshold", "log_loss", 0.5, None, 0.5) == [
        GateCheck("threshold", "log_loss", 0.5, 0.5, True, "log_loss 0.5 <= max 0.5")]  # fmt: skip


def test_a_value_just_outside_a_bound_fails_and_says_which():
    below = check_bounds("slice", "auc", 0.7499, 0.75, 0.9, "region=north")
    assert below == [
        GateCheck("slice", "auc", 0.7499, 0.75, False, "region=north: auc 0.7499 < min 0.75", "region=north"),
        GateCheck("slice", "auc", 0.7499, 0.9, True, "region=north: auc 0.7499 <= max 0.9", "region=north"),
    ]
    above = check_bounds("threshold", "log_loss", 0.5001, None, 0.5)
    assert [(c.passed, c.detail) for c in above] == [(False, "log_loss 0.5001 > max 0.5")]


@pytest.mark.parametrize(("low", "high", "bound"), [(0.7, None, 0.7), (None, 0.3, 0.3), (0.7, 0.9, 0.7)])
def test_a_missing_value_fails_once_against_the_first_bound(low, high, bound):
    for missing in (None, float("nan"), "0.8", True):
        assert check_bounds("fairness", "gap", missing, low, high, "gender") == [
            GateCheck("fairness", "gap", None, bound, False, "gender: gap was not computed", "gender")]  # fmt: skip


def test_an_integer_value_is_judged_as_a_number():
    assert check_bounds("threshold", "rows", 3, 3, 3)[0] == GateCheck("threshold", "rows", 3.0, 3, True, "rows 3 >= min 3")


# ------------------------------------------------------------------ champion comparison


@pytest.mark.parametrize(
    ("metric", "new", "old", "relative", "min_delta"),
    [
        ("auc", 0.75, 0.5, False, 0.25),  # maximize, absolute: gain 0.25 == min_delta
        ("log_loss", 0.25, 0.5, False, 0.25),  # minimize, absolute
        ("auc", 0.75, 0.5, True, 0.5),  # maximize, relative: 0.25 / 0.5
        ("rmse", 1.5, 2.0, True, 0.25),  # minimize, relative
        ("auc", 0.5, 0.75, False, -0.25),  # a tolerated regression exactly at the tolerance
    ],
)
def test_min_delta_exactly_met_passes_and_one_step_short_fails(metric, new, old, relative, min_delta):
    rule = {"metric": metric, "min_delta": min_delta, "relative": relative}
    decision = decide(gate_of(champion=[rule]), result({metric: new}), {"metrics": {metric: old}})
    (check,) = decision.checks
    assert check == GateCheck("champion", metric, min_delta, min_delta, True, check.detail)
    assert decision.passed and decision.status == "passed"
    short = decide(gate_of(champion=[{**rule, "min_delta": min_delta + 2**-20}]), result({metric: new}),
                   {"metrics": {metric: old}})  # fmt: skip
    assert not short.passed and short.failures[0].rule == "champion"


def test_champion_check_detail_names_both_values_the_kind_and_the_sign():
    rule = {"metric": "auc", "min_delta": 0.25, "relative": False}
    ok = decide(gate_of(champion=[rule]), result({"auc": 0.75}), {"metrics": {"auc": 0.5}})
    assert ok.checks[0].detail == "auc 0.75 vs champion 0.5: improvement 0.25 >= min_delta 0.25"
    rel = decide(gate_of(champion=[{**rule, "relative": True}]), result({"auc": 0.5}), {"metrics": {"auc": 0.5}})
    assert rel.checks[0].detail == "auc 0.5 vs champion 0.5: relative improvement 0 < min_delta 0.25"


@pytest.mark.parametrize(("new", "old", "side"), [(None, 0.5, "candidate"), (0.5, None, "champion"),
                                                  (None, None, "candidate")])  # fmt: skip
def test_a_missing_metric_on_either_side_fails_the_comparison(new, old, side):
    rule = {"metric": "auc", "min_delta": -0.5, "relative": False}
    candidate = result({} if new is None else {"auc": new})
    decision = decide(gate_of(champion=[rule, rule]), candidate, {"metrics": {} if old is None else {"auc": old}})
    expected = GateCheck("champion", "auc", None, -0.5, False, f"auc of the {side} was not computed")
    assert decision.checks == (expected, expected) and decision.status == "rejected"


def test_relative_improvement_over_a_zero_champion_is_signed_infinity():
    directions = {"m": "maximize"}
    assert improvement("m", 0.0, 0.0, relative=True, directions=directions) == 0.0
    assert improvement("m", 0.5, 0.0, relative=True, directions=directions) == math.inf
    assert improvement("m", -0.5, 0.0, relative=True, directions=directions) == -math.inf
    assert improvement("m", 0.5, -2.0, relative=True, directions=directions) == 1.25  # divided by |champion|


def test_unknown_direction_message_lists_the_known_metrics():
    with pytest.raises(GateError) as error:
        improvement("pinball", 1.0, 2.0, relative=False, directions={"b": "minimize", "a": "maximize"})
    assert str(error.value) == ("no direction known for metric 'pinball'; known: a, b "
                                "(pass directions={'metric': 'maximize' | 'minimize'})")  # fmt: skip


# ------------------------------------------------------------------ slices and fairness


def slice_rule(min_rows: int, low: float | None = 0.6, high: float | None = None) -> dict:
    return {"column": "region", "metric": "auc", "min": low, "max": high, "min_rows": min_rows}


def test_a_slice_with_exactly_min_rows_is_judged_and_one_row_fewer_is_not():
    slices = {"region": {"north": {"auc": 0.5, "rows": 50}, "south": {"auc": 0.5, "rows": 49}}}
    decision = decide(gate_of(slices=[slice_rule(50)]), result({}, slices))
    north, south = decision.checks[1:]
    assert north == GateCheck("slice", "auc", 0.5, 0.6, False, "region=north: auc 0.5 < min 0.6", "region=north")
    assert south == GateCheck("slice", "auc", 0.5, None, True, "region=south: 49 rows < min_rows 50, not judged",
                              "region=south", True)  # fmt: skip
    assert decision.summary == "rejected: region=north: auc 0.5 < min 0.6; 1 slice group(s) too small to judge"


def test_slice_groups_are_judged_in_string_order_against_min_and_max():
    slices = {"tier": {10: {"auc": 0.9, "rows": 5}, 9: {"auc": 0.9, "rows": 5}}}
    rule = {"column": "tier", "metric": "auc", "min": None, "max": 0.9, "min_rows": 5}
    decision = decide(gate_of(slices=[rule]), result({}, slices))
    assert [(c.scope, c.passed, c.bound) for c in decision.checks[1:]] == [("tier=10", True, 0.9), ("tier=9", True, 0.9)]


def test_a_slice_column_without_results_fails_with_a_fix():
    decision = decide(gate_of(slices=[slice_rule(5)]), result({}))
    assert decision.checks[1] == GateCheck(
        "slice", "auc", None, None, False,
        "no slice results for column 'region'; evaluate with it among the slice columns", "region")  # fmt: skip


def test_a_fairness_gap_exactly_at_max_passes():
    rule = {"column": "gender", "metric": "demographic_parity_difference", "max": 0.125}
    at = decide(gate_of(fairness=[rule]), result({}, fairness={"gender": {"demographic_parity_difference": 0.125}}))
    assert at.checks[1] == GateCheck("fairness", "demographic_parity_difference", 0.125, 0.125, True,
                                     "gender: demographic_parity_difference 0.125 <= max 0.125", "gender")  # fmt: skip
    missing = decide(gate_of(fairness=[rule]), result({}))
    assert missing.checks[1].detail == "gender: demographic_parity_difference was not computed"


def test_fairness_rules_on_regression_are_an_error_and_without_rules_regression_is_fine():
    with pytest.raises(GateError, match="fairness thresholds need a classification task"):
        decide(gate_of(fairness=[{"column": "g", "metric": "x", "max": 1.0}]), result({}), task="regression")
    assert decide(gate_of(), result({}), task="regression").passed


# ------------------------------------------------------------------ no champion, verdict, summary, override


@pytest.mark.parametrize(
    ("policy", "passed_check", "detail", "status"),
    [
        ("promote", True, "no champion exists: policy 'promote'", "passed"),
        ("require_approval", True, "no champion exists: policy 'require_approval'", "needs_approval"),
        ("reject", False, "no champion exists and the policy is 'reject'", "rejected"),
    ],
)
def test_no_champion_policy_check_and_status(policy, passed_check, detail, status):
    decision = decide(gate_of(no_champion=policy), result({}))
    assert decision.checks == (GateCheck("no_champion", "", None, None, passed_check, detail),)
    assert decision.status == status


def test_require_approval_only_applies_without_a_champion():
    gate = gate_of(no_champion="require_approval", champion=[{"metric": "auc", "min_delta": 0.0, "relative": False}])
    assert decide(gate, result({"auc": 0.5}), {"metrics": {"auc": 0.5}}).status == "passed"


def test_summaries_count_the_judged_checks_and_list_the_failures():
    thresholds = [{"metric": "auc", "min": 0.75, "max": None}, {"metric": "log_loss", "min": None, "max": 0.5}]
    assert decide(gate_of(thresholds=thresholds), result({"auc": 0.75, "log_loss": 0.5})).summary == (
        "passed: all 3 checks passed")  # fmt: skip
    assert decide(gate_of(thresholds=thresholds), result({"auc": 0.5, "log_loss": 0.75})).summary == (
        "rejected: auc 0.5 < min 0.75; log_loss 0.75 > max 0.5")  # fmt: skip
    assert decide(gate_of(no_champion="require_approval"), result({})).summary == (
        "needs approval: all 1 checks passed but there is no champion")  # fmt: skip


def test_an_override_of_a_needs_approval_verdict_says_approval_required():
    decision = decide(gate_of(no_champion="require_approval"), result({}), override={"actor": "ann", "reason": "ok"})
    assert decision.summary == "overridden by ann: ok (would have failed: approval required)"
    assert decision.override == {"actor": "ann", "reason": "ok"} and decision.passed


def test_an_override_of_a_passing_gate_is_recorded_but_the_status_stays_passed():
    decision = decide(gate_of(), result({}), override={"actor": "ann", "reason": "ok"})
    assert (decision.status, decision.passed, decision.override) == ("passed", True, {"actor": "ann", "reason": "ok"})


def test_an_override_needs_an_actor_and_by_default_a_reason():
    with pytest.raises(GateError, match="needs an 'actor'"):
        decide(gate_of(no_champion="reject"), result({}), override={"reason": "r"})
    with pytest.raises(GateError, match="needs a 'reason'"):
        decide(gate_of(no_champion="reject"), result({}), override={"actor": "a"})
    lax = gate_of(no_champion="reject", override={"allowed": True, "require_reason": False})
    assert decide(lax, result({}), override={"actor": "a"}).override == {"actor": "a", "reason": ""}


def test_a_decision_with_an_override_round_trips():
    decision = decide(gate_of(no_champion="reject"), result({}), override={"actor": "a", "reason": "r"})
    data = decision.to_dict()
    assert data["checks"] == [{"rule": "no_champion", "metric": "", "value": None, "bound": None, "passed": False,
                               "detail": "no champion exists and the policy is 'reject'", "scope": "",
                               "skipped": False}]  # fmt: skip
    assert GateDecision.from_dict(data) == decision and GateDecision.from_dict(data).override == decision.override


# ------------------------------------------------------------------ every rule is applied, in order


def test_every_slice_rule_and_group_is_judged_after_a_missing_column_or_a_small_group():
    slices = {"region": {"east": {"auc": 0.9, "rows": 1}, "west": {"auc": 0.5, "rows": 50}}}
    rules = [{**slice_rule(5), "column": "plan"}, slice_rule(5)]
    decision = decide(gate_of(slices=rules), result({}, slices))
    assert [(c.scope, c.passed, c.skipped) for c in decision.checks[1:]] == [
        ("plan", False, False), ("region=east", True, True), ("region=west", False, False)]  # fmt: skip


def test_fairness_checks_are_added_to_the_other_rules():
    gate = gate_of(thresholds=[{"metric": "auc", "min": 0.75, "max": None}],
                   fairness=[{"column": "g", "metric": "gap", "max": 0.1}, {"column": "h", "metric": "gap", "max": 0.1}])
    decision = decide(gate, result({"auc": 0.5}, fairness={"g": {"gap": 0.0}, "h": {"gap": 0.0}}))
    assert [c.rule for c in decision.checks] == ["threshold", "no_champion", "fairness", "fairness"]


def test_an_overridden_summary_lists_every_failure():
    thresholds = [{"metric": "auc", "min": 0.75, "max": None}, {"metric": "f1", "min": 0.75, "max": None}]
    decision = decide(gate_of(thresholds=thresholds), result({"auc": 0.5, "f1": 0.5}),
                      override={"actor": "a", "reason": "r"})  # fmt: skip
    assert decision.summary == "overridden by a: r (would have failed: auc 0.5 < min 0.75; f1 0.5 < min 0.75)"


def test_without_an_override_none_is_recorded():
    assert decide(gate_of(), result({})).override is None


@pytest.mark.parametrize(
    ("gate", "override", "task", "message"),
    [
        (gate_of(override={"allowed": False, "require_reason": True}), {"actor": "a", "reason": "r"}, "regression",
         "this gate does not allow manual overrides (gate.override.allowed is false)"),
        (gate_of(), {"reason": "r"}, "regression", "a gate override needs an 'actor': who takes responsibility for it"),
        (gate_of(), {"actor": "a", "reason": " "}, "regression",
         "a gate override needs a 'reason' (gate.override.require_reason is true); say why"),
        (gate_of(fairness=[{"column": "g", "metric": "x", "max": 1.0}]), None, "regression",
         "fairness thresholds need a classification task; remove gate.fairness for regression"),
    ],
)
def test_gate_errors_say_what_and_how_to_fix_it(gate, override, task, message):
    with pytest.raises(GateError) as error:
        decide(gate, result({}), task=task, override=override)
    assert str(error.value) == message
