"""The run summary names the gate rule that failed, not only "rejected"."""

from __future__ import annotations

from test_gates_decide import CHURN_GATE, _decide, _result

from loopc.runtime.steps.deploy import rejection


def test_the_stop_message_names_every_failed_rule():
    decision = _decide(_result(auc=0.65, dpd=0.2))
    assert decision.status == "rejected"
    message = rejection(decision)
    assert message.startswith("the gate rejected the candidate (")
    assert "auc 0.65 < min 0.7" in message and "demographic_parity_difference 0.2" in message
    assert "log_loss" not in message  # passed rules are not named


def test_a_passing_decision_names_no_rule():
    assert CHURN_GATE["thresholds"] and rejection(_decide(_result())) == "the gate rejected the candidate"
