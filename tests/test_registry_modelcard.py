"""Model cards: every section present, values from the registry version, deterministic bytes."""

from __future__ import annotations

from loopc.runtime.gate.decide import decide_gate
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.modelcard import render_model_card

PIPELINE = {"name": "churn", "owner": "growth-ml@example.com", "risk_class": "limited",
            "intended_use": "Rank subscribers by churn risk; not for pricing.", "description": "Weekly churn model."}
MODEL = {"name": "churn_classifier", "task": "binary_classification", "label": "churned",
         "features": ["tenure", "contract"], "architecture": {"kind": "mlp", "hidden": [16, 8]},
         "optimizer": {"name": "adamw", "lr": 0.05}, "training": {"epochs": 30, "batch_size": 256},
         "precision": "float32"}  # fmt: skip
EVALUATION = {
    "metrics": {"auc": 0.81234, "log_loss": 0.4},
    "slices": {"region": {"north": {"auc": 0.8, "rows": 120}, "south|x": {"auc": 0.7, "rows": 20}}},
    "fairness": {"gender": {"demographic_parity_difference": 0.04}},
}
GATE = {"split": "test", "thresholds": [{"metric": "auc", "min": 0.7, "max": None}], "champion": [],
        "slices": [{"column": "region", "metric": "auc", "min": 0.6, "max": None, "min_rows": 50}], "fairness": [],
        "no_champion": "promote", "override": {"allowed": True, "require_reason": True}}  # Gate.model_dump()


def _card(tmp_path):
    decision = decide_gate(GATE, task="binary_classification", candidate=EVALUATION, champion=None).to_dict()
    with open_registry(tmp_path / "r.db") as reg:
        version = reg.register_version(
            "churn_classifier", artifact="k1", spec_hash="abc123", metrics=EVALUATION["metrics"], gate=decision,
            lineage={"dataset_fingerprints": {"customers": "fp-1"}, "step_fingerprints": {"train.churn_classifier": "s9"},
                     "code_version": "0.1.0", "seed": 7}, actor="ci",
        )  # fmt: skip
    data = {"customers": {"rows": 5000, "splits": {"train": 3500, "valid": 750, "test": 750}}}
    return render_model_card(version, pipeline=PIPELINE, model=MODEL, gate=decision,
                             fairness=EVALUATION["fairness"], data=data, slices=EVALUATION["slices"])  # fmt: skip


def test_card_has_every_section_with_values(tmp_path):
    card = _card(tmp_path)
    for heading in ("# Model card: churn_classifier v1", "## Intended use", "## Model", "## Data", "## Metrics",
                    "### Slices by region", "## Fairness", "## Gate decision", "## Lineage"):  # fmt: skip
        assert heading in card
    assert "Rank subscribers by churn risk; not for pricing." in card
    assert "transparency obligations" in card and "growth-ml@example.com" in card
    assert "| customers | fp-1 | 5000 | test 750, train 3500, valid 750 |" in card
    assert "| auc | 0.8123 |" in card
    assert "| south\\|x | 20 | 0.7 |" in card
    assert "| gender | demographic_parity_difference | 0.04 |" in card
    assert "Status: **passed**. passed: all 3 checks passed; 1 slice group(s) too small to judge" in card
    assert "| slice | region=south\\|x | auc | 0.7 | — | skipped |" in card
    assert "| step train.churn_classifier | s9 |" in card and "| seed | 7 |" in card
    assert "| architecture | mlp [16, 8] |" in card


def test_card_is_deterministic(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = _card(tmp_path / "a"), _card(tmp_path / "b")
    strip = [line for line in first.splitlines() if not line.startswith("- Registered:")]
    assert strip == [line for line in second.splitlines() if not line.startswith("- Registered:")]
    assert first.endswith("\n") and "\r" not in first


def test_card_shows_epochs_trained_beside_configured(tmp_path):
    version_card = _card(tmp_path)
    assert "| epochs configured / batch size | 30 / 256 |" in version_card
    decision = decide_gate(GATE, task="binary_classification", candidate=EVALUATION, champion=None).to_dict()
    with open_registry(tmp_path / "r.db") as reg:
        version = reg.version("churn_classifier", 1)
    card = render_model_card(version, pipeline=PIPELINE, model=MODEL, gate=decision, fairness=None, data={},
                             trained={"epochs": 7, "best_epoch": 4})
    assert "| epochs trained (best) / configured / batch size | 7 (4) / 30 / 256 |" in card
