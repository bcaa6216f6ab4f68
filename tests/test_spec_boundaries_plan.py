"""The planner's contract, specified: step documents field by field, deterministic text, topological order
with natural tie-breaks, and clear errors for a duplicated step, an unknown dependency and a cycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.api import load_project
from loopc.compiler.errors import SpecErrors
from loopc.compiler.plan.pipeline import (
    STEP_FORMAT,
    Plan,
    Step,
    StepGraph,
    StepResources,
    natural_key,
    plan_edges,
    plan_pipeline,
    step_document,
    step_json,
)
from loopc.compiler.plan.steps import StepSpec

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn" / "pipeline.yaml"


@pytest.fixture(scope="module")
def plans() -> list[Plan]:
    (loaded,) = load_project(EXAMPLE)
    return plan_pipeline(loaded.spec, spec_hash="h" * 64, source=str(EXAMPLE))


def test_step_documents_carry_every_field_of_the_contract(plans):
    train, monitor, *_ = plans
    step = train.step("train.churn_classifier")
    document = step_document(train, step)
    assert document == {
        "format": STEP_FORMAT, "pipeline": "churn", "plan": "churn", "id": "train.churn_classifier", "kind": "train",
        "stage": "train", "deps": list(step.deps), "fingerprint": step.fingerprint, "cacheable": True,
        "state_dir": ".loopc", "spec_hash": "h" * 64, "resources": step.resources.to_dict(), "config": step.config,
    }  # fmt: skip
    assert step.deps == ("features.churn_classifier",)
    monitor_step = monitor.steps[0]
    assert step_document(monitor, monitor_step)["plan"] == "churn_monitor"
    assert step_document(monitor, monitor_step)["cacheable"] is False


def test_step_json_is_sorted_two_space_indented_unescaped_utf8_with_a_final_newline():
    plan = Plan("p", "train", ())
    step = Step("a.b", "validate", "data", {"zeta": 1, "alpha": "é"}, ("x",), "f" * 64)
    text = step_json(plan, step)
    assert text == json.dumps(step_document(plan, step), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert '\n  "cacheable": true,\n  "config": {\n    "alpha": "é",\n    "zeta": 1\n  },' in text


def test_resources_stages_and_cacheability_are_attached_per_kind(plans):
    train, *_ = plans
    by_id = {step.id: step for step in train.steps}
    assert by_id["train.churn_classifier"].resources.memory_mb == 4096  # the model's own resources
    assert by_id["validate.customers"].resources.memory_mb == 2048  # the pipeline's
    assert by_id["validate.customers"].resources.retries == 1 and by_id["validate.customers"].resources.retry_delay_s == 60
    assert {s.stage for s in train.steps if s.kind in ("register", "promote")} == {"deploy"}
    assert [s.id for s in train.steps if not s.cacheable] == [
        "gate.churn_classifier", "register.churn_classifier", "shadow.churn_classifier", "promote.churn_classifier"]
    assert all(s.description for s in train.steps)


def test_the_monitor_plan_triggers_the_training_plan_on_the_first_monitors_schedule(plans):
    train, monitor, *_ = plans
    assert (train.name, train.kind, train.triggers, train.schedule) == ("churn", "train", None, "0 3 * * 1")
    assert (monitor.name, monitor.kind, monitor.triggers, monitor.schedule) == (
        "churn_monitor", "monitor", "churn", "0 * * * *")  # fmt: skip
    assert monitor.owner == train.owner == "growth-ml@example.com" and monitor.tags == ("growth", "churn")


def test_plan_step_lookup_names_a_missing_step(plans):
    with pytest.raises(KeyError, match="nope"):
        plans[0].step("nope")


# ------------------------------------------------------------------ the graph


def graph_of(*steps: tuple[str, tuple[str, ...]]) -> StepGraph:
    graph = StepGraph("spec.yaml")
    for step_id, deps in steps:
        graph.add(StepSpec(step_id, "echo", {}, deps))
    return graph


def test_natural_order_puts_t2_before_t10_and_breaks_ties_by_name():
    assert sorted(["t10", "t2", "t1", "a"], key=natural_key) == ["a", "t1", "t2", "t10"]
    graph = graph_of(("s.t10", ("r",)), ("s.t2", ("r",)), ("r", ()), ("b", ()))
    assert [s.id for s in graph.order()] == ["b", "r", "s.t2", "s.t10"]


def test_edges_in_step_order_and_reduced_without_implied_edges():
    graph = graph_of(("a", ()), ("b", ("a",)), ("c", ("a", "b")))
    assert graph.edges() == [("a", "b"), ("a", "c"), ("b", "c")]
    assert graph.edges(reduced=True) == [("a", "b"), ("b", "c")]
    plan = Plan("p", "train", tuple(Step(i, "echo", "s", {}, d, "") for i, d in (("z", ()), ("a", ("z",)),
                                                                                 ("m", ("z", "a")))))  # fmt: skip
    assert plan_edges(plan) == [("z", "a"), ("z", "m"), ("a", "m")]
    assert plan_edges(plan, reduced=True) == [("z", "a"), ("a", "m")]


def error_of(graph_steps) -> tuple:
    with pytest.raises(SpecErrors) as raised:
        graph_of(*graph_steps).order()
    (error,) = raised.value.errors
    return error.code, error.spec_path, error.message, error.file


def test_a_step_planned_twice_is_an_error():
    with pytest.raises(SpecErrors) as raised:
        graph_of(("a", ()), ("a", ()))
    (error,) = raised.value.errors
    assert (error.code, error.spec_path, error.message) == ("LPC704", "a", "step id 'a' is planned twice")


def test_a_dependency_on_an_unknown_step_names_the_step_that_needs_it():
    assert error_of([("b", ("ghost",)), ("a", ("ghost",))]) == (
        "LPC705", "a", "step 'a' depends on unknown step 'ghost'", "spec.yaml")  # fmt: skip


def test_a_dependency_added_before_its_step_is_fine():
    assert [s.id for s in graph_of(("b", ("a",)), ("a", ())).order()] == ["a", "b"]


def test_a_cycle_is_an_error_that_draws_it():
    code, path, message, _ = error_of([("a", ("c",)), ("b", ("a",)), ("c", ("b",)), ("d", ())])
    assert code == "LPC701" and message.startswith("Cycle: ")
    nodes = message.removeprefix("Cycle: ").split(" -> ")
    assert nodes[0] == nodes[-1] == path and sorted(nodes[:-1]) == ["a", "b", "c"]


def test_step_resources_dict_has_every_field():
    assert list(StepResources().to_dict()) == ["cpus", "gpus", "memory_mb", "time_s", "nodes", "partition", "account",
                                               "qos", "retries", "retry_delay_s", "pool", "queue", "priority"]  # fmt: skip
