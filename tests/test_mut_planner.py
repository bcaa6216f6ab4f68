"""The planner's graph and resources contract: error wording and location, tasks_per_node, plan fields."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from test_plan_support import example_spec

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.plan.fingerprint import step_fingerprint
from loopc.compiler.plan.pipeline import (
    STEP_FORMAT,
    StepGraph,
    natural_key,
    plan_pipeline,
    rendered_once,
    step_document,
    step_json,
    step_resources,
)
from loopc.compiler.plan.steps import StepSpec, training_steps
from loopc.compiler.spec.models import Resources


def only_error(graph_action) -> SpecError:
    with pytest.raises(SpecErrors) as raised:
        graph_action()
    (error,) = raised.value.errors
    return error


def test_duplicate_step_id_names_the_source_at_line_zero():
    graph = StepGraph("p.yaml")
    graph.add(StepSpec("a.1", "validate", {}))
    error = only_error(lambda: graph.add(StepSpec("a.1", "validate", {})))
    assert error == SpecError("p.yaml", 0, 0, "LPC704", "a.1", "step id 'a.1' is planned twice")
    assert (error.file, error.line, error.column) == ("p.yaml", 0, 0)


def test_unknown_dependency_names_the_user_and_the_missing_step():
    graph = StepGraph("p.yaml")
    graph.add(StepSpec("b", "split", {}, ("zz", "a")))
    error = only_error(graph.order)
    assert error == SpecError("p.yaml", 0, 0, "LPC705", "b", "step 'b' depends on unknown step 'a'")
    assert (error.line, error.column) == (0, 0)


def test_cycle_error_names_the_cycle_with_a_fix():
    graph = StepGraph("p.yaml")
    graph.add(StepSpec("a", "validate", {}, ("b",)))
    graph.add(StepSpec("b", "split", {}, ("a",)))
    error = only_error(graph.order)
    assert (error.file, error.line, error.column, error.code) == ("p.yaml", 0, 0, "LPC701")
    assert error.message in ("Cycle: a -> b -> a", "Cycle: b -> a -> b")
    assert error.spec_path == error.message.split()[1]
    assert error.hint == "remove one of these dependencies"


def test_order_breaks_ties_by_natural_key():
    graph = StepGraph()
    for step_id in ["train.m.t10", "train.m.t2", "train.m.t1", "a"]:
        graph.add(StepSpec(step_id, "train", {}, ("a",) if step_id != "a" else ()))
    assert [s.id for s in graph.order()] == ["a", "train.m.t1", "train.m.t2", "train.m.t10"]


def test_tasks_per_node_defaults_to_one_and_later_layers_override():
    assert step_resources(Resources()).tasks_per_node == 1
    assert step_resources(Resources(tasks_per_node=4)).tasks_per_node == 4
    assert step_resources(Resources(tasks_per_node=4), Resources()).tasks_per_node == 4
    assert step_resources(Resources(tasks_per_node=4), Resources(tasks_per_node=2)).tasks_per_node == 2
    assert step_resources(Resources(tasks_per_node=3)).to_dict()["tasks_per_node"] == 3


def test_every_plan_carries_the_pipeline_fields():
    spec, spec_hash = example_spec("churn")
    plans = plan_pipeline(spec, spec_hash=spec_hash)
    assert [p.kind for p in plans] == ["train", "monitor", "score"]
    for plan in plans:
        assert plan.spec_hash == spec_hash
        assert plan.state_dir == spec.pipeline.state_dir
        assert plan.tags == tuple(spec.pipeline.tags)
        assert plan.description == spec.pipeline.description
        assert plan.owner == spec.pipeline.owner


def test_monitor_plan_without_any_monitor_schedule_has_none():
    spec, spec_hash = example_spec("churn")
    monitors = {name: m.model_copy(update={"schedule": None}) for name, m in spec.monitors.items()}
    spec = spec.model_copy(update={"monitors": monitors})
    monitor = next(p for p in plan_pipeline(spec, spec_hash=spec_hash) if p.kind == "monitor")
    assert monitor.schedule is None
    assert monitor.triggers == spec.pipeline.name


@pytest.mark.parametrize(("kwargs", "file"), [({"source": "p.yaml"}, "p.yaml"), ({}, "<spec>")])
def test_plan_errors_name_the_source_file(kwargs, file):
    spec, spec_hash = example_spec("churn")
    with pytest.raises(SpecErrors) as raised:
        plan_pipeline(spec, spec_hash=spec_hash, sweep_points=[{"model.bogus": 1}], **kwargs)
    assert [e.file for e in raised.value.errors] == [file]


def test_graph_without_a_source_names_the_spec():
    graph = StepGraph()
    graph.add(StepSpec("a", "validate", {}))
    assert only_error(lambda: graph.add(StepSpec("a", "validate", {}))).file == "<spec>"


def test_natural_key_puts_text_before_numbers_and_t2_before_t10():
    assert sorted(["1", "a", "t10", "t2"], key=natural_key) == ["a", "t2", "t10", "1"]


def test_edges_sorted_by_step_then_dep_naturally():
    graph = StepGraph()
    for step_id in ["z", "y", "t10", "t2"]:
        graph.add(StepSpec(step_id, "validate", {}))
    graph.add(StepSpec("b", "split", {}, ("z", "y")))
    graph.add(StepSpec("c", "split", {}, ("t10", "t2")))
    graph.add(StepSpec("a", "split", {}, ("c",)))
    assert graph.edges() == [("c", "a"), ("y", "b"), ("z", "b"), ("t2", "c"), ("t10", "c")]


def test_placed_steps_keep_descriptions_and_fingerprint_kind_config_deps():
    spec, spec_hash = example_spec("churn")
    (train, *_) = plan_pipeline(spec, spec_hash=spec_hash)
    planned = {s.id: s for s in training_steps(spec, None, "<spec>")}
    for step in train.steps:
        assert step.description == planned[step.id].description != ""
        deps = (train.step(d).fingerprint for d in step.deps)
        assert step.fingerprint == step_fingerprint(step.kind, step.config, deps, STEP_FORMAT)


def test_step_document_names_store_and_registry_when_set():
    spec, spec_hash = example_spec("churn")
    plan = replace(plan_pipeline(spec, spec_hash=spec_hash)[0], store="s3://b/p", registry="sqlite:///r.db")
    document = step_document(plan, plan.steps[0])
    assert (document["store"], document["registry"]) == ("s3://b/p", "sqlite:///r.db")


def test_step_json_is_rendered_once_per_step_object():
    spec, spec_hash = example_spec("churn")
    plan = plan_pipeline(spec, spec_hash=spec_hash)[0]
    first, second = plan.steps[:2]
    text = step_json(plan, first)
    assert plan.texts[("step", first.id)] == (first, text)
    assert step_json(plan, second) != text
    assert json.loads(step_json(plan, second))["id"] == second.id
    assert step_json(plan, first) is text


def test_rendered_once_reuses_text_only_for_the_same_source():
    spec, spec_hash = example_spec("churn")
    plan = plan_pipeline(spec, spec_hash=spec_hash)[0]
    calls = []

    def render(text):
        return lambda: calls.append(text) or text

    source = object()
    assert rendered_once(plan, ("k",), source, render("one")) == "one"
    assert rendered_once(plan, ("k",), source, render("two")) == "one"
    assert rendered_once(plan, ("k",), object(), render("three")) == "three"
    assert rendered_once(plan, ("other",), object(), render("four")) == "four"
    assert calls == ["one", "three", "four"]
    assert plan.texts[("k",)][1] == "three"
