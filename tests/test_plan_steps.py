"""The planner's steps: ids, order, deps, configs per kind, resources, sweeps, monitor plan."""

from __future__ import annotations

import pytest
from test_plan_support import EXAMPLES, compose_tree, example_spec, spec_from_tree

from loopc.compiler.errors import SpecErrors
from loopc.compiler.plan.pipeline import StepGraph, plan_pipeline, step_resources
from loopc.compiler.plan.steps import StepSpec

CONFIG_KEYS = {
    "validate": {"dataset_name", "dataset"},
    "split": {"dataset_name", "split", "columns"},
    "features": {"model_name", "dataset_name", "task", "label", "columns", "features", "profile_columns",
                 "feature_order"},
    "train": {"model", "trial", "sweep_point"},
    "select": {"sweep", "trials"},
    "evaluate": {"model", "gate"},
    "gate": {"model_name", "task", "gate"},
    "register": {"pipeline", "model", "dataset_names"},
    "shadow": {"model_name", "task", "shadow"},
    "promote": {"model_name", "pipeline", "deploy", "human_approval_required"},
    "monitor": {"monitor_name", "monitor", "model", "columns", "feature_columns", "pipeline"},
    "score": {"model_name", "scoring"},
}


def plans_of(name: str, **choices: str):
    spec, spec_hash = example_spec(name, **choices)
    return plan_pipeline(spec, spec_hash=spec_hash)


def test_churn_training_plan_ids_in_topological_order():
    train, monitor, score = plans_of("churn")
    assert [s.id for s in train.steps] == [
        "validate.customers", "split.customers", "features.churn_classifier", "train.churn_classifier",
        "evaluate.churn_classifier", "gate.churn_classifier", "register.churn_classifier",
        "shadow.churn_classifier", "promote.churn_classifier",
    ]
    assert (train.name, monitor.name, monitor.triggers) == ("churn", "churn_monitor", "churn")
    assert [s.id for s in monitor.steps] == ["monitor.weekly_drift"]
    assert (score.name, score.kind, score.schedule, score.triggers) == ("churn_score", "score", "30 4 * * *", None)
    assert [s.id for s in score.steps] == ["score.churn_classifier"] and not score.steps[0].cacheable


def test_features_step_keeps_model_features_order():
    train, *_ = plans_of("churn")
    features = train.step("features.churn_classifier").config
    assert features["feature_order"][:2] == ["tenure", "monthly_charges"]
    assert features["feature_order"] != sorted(features["feature_order"])


@pytest.mark.parametrize("example", ["churn", "demand"])
def test_every_config_has_exactly_the_documented_keys(example):
    for plan in plans_of(example):
        for step in plan.steps:
            assert set(step.config) == CONFIG_KEYS[step.kind], step.id


def test_plan_metadata_comes_from_the_pipeline():
    train, monitor, _ = plans_of("churn")
    assert train.owner == "growth-ml@example.com" and train.schedule == "0 3 * * 1"
    assert train.tags == ("growth", "churn") and train.description.startswith("Weekly retraining")
    assert monitor.schedule == "0 * * * *" and monitor.kind == "monitor"
    assert len(train.spec_hash) == 64 and train.spec_hash == monitor.spec_hash


def test_cacheable_and_stages_by_kind():
    train, monitor = plans_of("demand")
    uncached = {s.kind for s in train.steps + monitor.steps if not s.cacheable}
    assert uncached == {"gate", "register", "shadow", "promote", "monitor"}
    assert {s.kind: s.stage for s in train.steps}["train"] == "train"


def test_resources_pipeline_defaults_and_model_overrides():
    train, *_ = plans_of("churn")
    validate, trained = train.step("validate.customers"), train.step("train.churn_classifier")
    assert (validate.resources.memory_mb, validate.resources.time_s, validate.resources.cpus) == (2048, 1800, 1)
    assert (validate.resources.retries, validate.resources.retry_delay_s) == (1, 60)
    assert (trained.resources.memory_mb, trained.resources.time_s, trained.resources.cpus) == (4096, 3600, 2)
    assert trained.resources.retries == 1  # pipeline default kept where the model says nothing


def test_step_resources_converts_units():
    from loopc.compiler.spec.models import Resources

    merged = step_resources(Resources(memory="16GiB", time="1d12h"), Resources(retry_delay="90s", gpus=2))
    assert (merged.memory_mb, merged.time_s, merged.retry_delay_s, merged.gpus) == (16384, 129600, 90, 2)


def test_features_config_lists_the_profile_columns():
    train, *_ = plans_of("churn")
    config = train.step("features.churn_classifier").config
    assert config["profile_columns"] == [
        "tenure_months", "monthly_charges", "total_charges", "support_calls", "contract", "payment_method",
    ]
    spec, _ = example_spec("churn")
    assert list(config["features"]) == spec.model.features


def test_model_sweep_expands_to_trials_and_select():
    train, *_ = plans_of("churn", model="mlp")
    trials = [s for s in train.steps if s.kind == "train"]
    assert [s.id for s in trials] == ["train.churn_classifier.t0", "train.churn_classifier.t1"]
    assert [s.config["model"]["optimizer"]["lr"] for s in trials] == [0.001, 0.003]
    assert [s.config["sweep_point"] for s in trials] == [{"optimizer.lr": 0.001}, {"optimizer.lr": 0.003}]
    assert all(s.config["model"]["sweep"] is None and s.array == "train.churn_classifier" for s in trials)
    assert [s.array_index for s in trials] == [0, 1]
    select = train.step("select.churn_classifier")
    assert select.deps == ("features.churn_classifier", *(s.id for s in trials))
    assert select.config["trials"] == [s.id for s in trials]
    assert train.step("evaluate.churn_classifier").deps == ("features.churn_classifier", "select.churn_classifier")


def test_cli_sweep_points_cross_the_model_grid():
    spec, spec_hash = example_spec("churn", model="mlp")
    points = [{"model.training.seed": 1}, {"model.training.seed": 2}]
    train = plan_pipeline(spec, spec_hash=spec_hash, sweep_points=points)[0]
    trials = [s for s in train.steps if s.kind == "train"]
    assert len(trials) == 4
    assert trials[3].config["sweep_point"] == {"optimizer.lr": 0.003, "training.seed": 2}
    assert train.step("select.churn_classifier").config["sweep"]["parameters"] == {
        "optimizer.lr": [0.001, 0.003], "training.seed": [1, 2]}


def test_cli_sweep_outside_the_model_is_an_error():
    spec, spec_hash = example_spec("demand")
    with pytest.raises(SpecErrors, match="LPC703"):
        plan_pipeline(spec, spec_hash=spec_hash, sweep_points=[{"gate.split": "valid"}])


def test_sweep_value_the_model_rejects_is_a_spec_error():
    tree = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")
    tree["model"]["sweep"] = {"parameters": {"optimizer.lr": [0.1, -1.0]}}
    spec, spec_hash = spec_from_tree(tree)
    with pytest.raises(SpecErrors, match="LPC702.*optimizer.lr") as info:
        plan_pipeline(spec, spec_hash=spec_hash)
    assert info.value.errors[0].spec_path == "model.sweep.parameters.optimizer.lr"


def test_sweep_path_through_a_scalar_is_a_spec_error():
    tree = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")
    tree["model"]["sweep"] = {"parameters": {"optimizer.lr.x": [0.1]}}
    spec, spec_hash = spec_from_tree(tree)
    with pytest.raises(SpecErrors, match="does not lead into the model"):
        plan_pipeline(spec, spec_hash=spec_hash)


def test_approval_required_for_manual_or_high_risk():
    tree = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")
    assert not _plans(tree)[0].step("promote.demand_forecast").config["human_approval_required"]
    tree["pipeline"]["risk_class"] = "high"
    assert _plans(tree)[0].step("promote.demand_forecast").config["human_approval_required"]
    tree["pipeline"]["risk_class"] = "minimal"
    tree["deploy"]["approval"] = "manual"
    assert _plans(tree)[0].step("promote.demand_forecast").config["human_approval_required"]


def test_no_shadow_step_when_shadow_disabled_and_no_monitor_plan_without_monitors():
    tree = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")
    tree["deploy"]["shadow"]["enabled"] = False
    tree["monitors"] = {}
    plans = _plans(tree)
    assert len(plans) == 1
    assert "shadow.demand_forecast" not in [s.id for s in plans[0].steps]
    assert plans[0].step("promote.demand_forecast").deps == ("gate.demand_forecast", "register.demand_forecast")


def test_cycle_is_reported_with_its_path():
    graph = StepGraph("x.yaml")
    graph.add(StepSpec("a", "validate", {}, ("c",)))
    graph.add(StepSpec("b", "split", {}, ("a",)))
    graph.add(StepSpec("c", "features", {}, ("b",)))
    with pytest.raises(SpecErrors) as info:
        graph.order()
    assert "LPC701" in str(info.value)
    assert "Cycle: a -> b -> c -> a" in str(info.value)


def test_unknown_dependency_is_reported():
    graph = StepGraph("x.yaml")
    graph.add(StepSpec("b", "split", {}, ("nope",)))
    with pytest.raises(SpecErrors, match="'b' depends on unknown step 'nope'"):
        graph.order()


def _plans(tree):
    spec, spec_hash = spec_from_tree(tree)
    return plan_pipeline(spec, spec_hash=spec_hash)


def test_a_point_over_the_whole_model_trains_each_variant():
    spec, spec_hash = example_spec("churn")
    mlp, _ = example_spec("churn", model="mlp")
    points = [{"model": spec.model.model_dump(mode="json")}, {"model": mlp.model.model_dump(mode="json")}]
    train = plan_pipeline(spec, spec_hash=spec_hash, sweep_points=points)[0]
    trials = [s for s in train.steps if s.kind == "train"]
    assert [t.config["model"]["architecture"]["kind"] for t in trials] == ["linear", "mlp"]
    assert all(t.config["model"]["sweep"] is None for t in trials)
    assert "features" not in trials[1].config["sweep_point"]


def test_a_sweep_that_changes_the_features_is_refused():
    spec, spec_hash = example_spec("churn")
    with pytest.raises(SpecErrors, match="LPC703.*model.features"):
        plan_pipeline(spec, spec_hash=spec_hash,
                      sweep_points=[{"model.features": ["tenure"]}, {"model.features": ["contract"]}])


def test_monitor_plan_takes_the_first_schedule_by_monitor_name():
    tree = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")
    first = dict(tree["monitors"]["daily_drift"], schedule=None)
    tree["monitors"] = {"zz_hourly": dict(first, schedule="0 * * * *"), "aa_manual": first}
    train, monitor = _plans(tree)
    assert [s.id for s in monitor.steps] == ["monitor.aa_manual", "monitor.zz_hourly"]
    assert monitor.schedule == "0 * * * *" and train.schedule == "@daily"
