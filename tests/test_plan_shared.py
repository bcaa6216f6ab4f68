"""Planning shares work between steps without changing what it plans: one dump per spec model, one canonical
text per shared config value, a topological order without networkx, all equal to their definitions."""

from __future__ import annotations

import hashlib
import json

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan_support import example_spec

from loopc.compiler.errors import SpecErrors
from loopc.compiler.plan.fingerprint import outcome_view, step_fingerprint
from loopc.compiler.plan.pipeline import StepGraph, natural_key, plan_pipeline
from loopc.compiler.plan.steps import StepSpec
from loopc.compiler.spec.models import Sweep
from loopc.runtime.execution.runner import RUNTIME_FORMAT

KEYS = st.sampled_from(["a", "b", "é", "description", "resources", "x y", "0"])
SCALARS = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=5)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)
CONTAINERS = st.lists(VALUES, max_size=3) | st.dictionaries(KEYS, VALUES, max_size=4)


def defined_fingerprint(kind, config, deps, step_format) -> str:
    """The fingerprint as documented: sha256 of json.dumps of the payload with sorted keys, compact, UTF-8."""
    payload = {"kind": kind, "config": outcome_view(config), "deps": sorted(deps), "step_format": step_format,
               "runtime_format": RUNTIME_FORMAT}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@settings(max_examples=200, deadline=None)
@given(config=st.dictionaries(KEYS, VALUES, max_size=5), deps=st.lists(st.text(max_size=4), max_size=3),
       kind=st.text(max_size=4), step_format=st.integers(0, 3))
def test_the_fingerprint_is_its_definition_for_any_config(config, deps, kind, step_format):
    expected = defined_fingerprint(kind, config, deps, step_format)
    assert step_fingerprint(kind, config, deps, step_format) == expected
    assert step_fingerprint(kind, config, iter(deps), step_format, {}) == expected


@settings(max_examples=100, deadline=None)
@given(shared=CONTAINERS, first=st.dictionaries(KEYS, VALUES, max_size=3), second=st.dictionaries(KEYS, VALUES,
                                                                                                    max_size=3))
def test_configs_sharing_a_value_hash_with_one_texts_as_each_alone(shared, first, second):
    one, other = {**first, "shared": shared}, {**second, "model": shared, "again": shared}
    texts: dict = {}
    assert step_fingerprint("k", one, [], 1, texts) == defined_fingerprint("k", one, [], 1)
    assert step_fingerprint("k", other, [], 1, texts) == defined_fingerprint("k", other, [], 1)


def test_a_text_is_kept_per_container_and_taken_from_there():
    shared = {"lr": 0.1, "description": "left out"}
    texts: dict = {}
    step_fingerprint("train", {"model": shared, "n": 1}, [], 1, texts)
    assert [value for value, _ in texts.values()] == [shared]  # containers only; the value pins its id
    texts[id(shared)] = (shared, '{"lr":0.2}')
    assert step_fingerprint("train", {"model": shared}, [], 1, texts) == defined_fingerprint(
        "train", {"model": {"lr": 0.2}}, [], 1)


@pytest.mark.parametrize("config", [{2: "a", 1: {"description": 3}}, {None: 1}, [1, {"description": 2}], "text"])
def test_configs_that_are_not_dicts_of_string_keys_hash_as_json_dumps_makes_them(config):
    assert step_fingerprint("k", config, ["d"], 1) == defined_fingerprint("k", config, ["d"], 1)


@pytest.mark.parametrize("number", [float("nan"), float("inf")])
def test_nan_or_infinity_in_a_config_is_refused_as_before(number):
    with pytest.raises(ValueError):
        step_fingerprint("k", {"x": [number]}, [], 1)


# ------------------------------------------------------------------ one dump per spec model


@pytest.mark.parametrize("example", ["churn", "demand"])
def test_every_step_config_holding_a_spec_model_holds_one_shared_dump_of_it(example):
    spec, spec_hash = example_spec(example)
    steps = {step.id: step for plan in plan_pipeline(spec, spec_hash=spec_hash) for step in plan.steps}
    model, name = spec.model, spec.model.name
    holders = [steps[f"evaluate.{name}"].config["model"], steps[f"register.{name}"].config["model"],
               steps[f"train.{name}"].config["model"]]  # no sweep: the trained model is the spec's
    holders += [step.config["model"] for step in steps.values() if step.kind == "monitor"]
    assert holders[0] == model.model_dump(mode="json") and all(held is holders[0] for held in holders)
    dataset = spec.datasets[model.dataset]
    columns = [steps[f"split.{model.dataset}"].config["columns"], steps[f"features.{name}"].config["columns"],
               steps[f"validate.{model.dataset}"].config["dataset"]["columns"]]
    assert columns[0] == {c: col.model_dump(mode="json") for c, col in dataset.columns.items()}
    assert all(held is columns[0] for held in columns)
    pipelines = [step.config["pipeline"] for step in steps.values() if "pipeline" in step.config]
    assert len(pipelines) >= 2 and all(held is pipelines[0] for held in pipelines)
    assert pipelines[0] == spec.pipeline.model_dump(mode="json")


# ------------------------------------------------------------------ the order, as networkx gives it


IDS = st.sampled_from(["a", "b", "s.t1", "s.t01", "s.t2", "s.t10", "z", "m.0", "m.00"])


@st.composite
def dags(draw):
    """Steps in a drawn order, each depending on some steps drawn before it (ids with equal natural keys too)."""
    ids = draw(st.lists(IDS, unique=True, min_size=1, max_size=9))
    order = draw(st.permutations(ids))
    return [(step, tuple(draw(st.lists(st.sampled_from(ids[:ids.index(step)]), max_size=3, unique=True)))
             if ids.index(step) else ()) for step in order]


@settings(max_examples=200, deadline=None)
@given(steps=dags())
def test_the_order_is_networkx_lexicographical_topological_sort_by_natural_key(steps):
    graph, reference = StepGraph("spec.yaml"), nx.DiGraph()
    for step_id, deps in steps:
        graph.add(StepSpec(step_id, "echo", {}, deps))
        reference.add_node(step_id)
        reference.add_edges_from((dep, step_id) for dep in deps)
    expected = list(nx.lexicographical_topological_sort(reference, key=natural_key))
    assert [step.id for step in graph.order()] == expected


def test_ids_with_equal_natural_keys_keep_the_order_they_were_first_named_in():
    for first, second in (("s.t01", "s.t1"), ("s.t1", "s.t01")):
        graph = StepGraph("spec.yaml")
        graph.add(StepSpec("r", "echo", {}, (second, first)))
        graph.add(StepSpec(first, "echo", {}))
        graph.add(StepSpec(second, "echo", {}))
        assert [step.id for step in graph.order()] == [second, first, "r"]


def test_a_cycle_behind_a_valid_prefix_is_named_as_networkx_finds_it():
    steps = [("a", ()), ("b", ("a", "d")), ("c", ("b",)), ("d", ("c",))]
    graph, reference = StepGraph("spec.yaml"), nx.DiGraph()
    for step_id, deps in steps:
        graph.add(StepSpec(step_id, "echo", {}, deps))
        reference.add_node(step_id)
        reference.add_edges_from((dep, step_id) for dep in deps)
    cycle = [u for u, _ in nx.find_cycle(reference)]
    with pytest.raises(SpecErrors) as raised:
        graph.order()
    (error,) = raised.value.errors
    assert (error.code, error.spec_path, error.message) == ("LPC701", cycle[0], f"Cycle: {' -> '.join(cycle + cycle[:1])}")


def test_trials_of_a_sweep_hold_their_own_models():
    spec, spec_hash = example_spec("churn")
    swept = spec.model_copy(update={"model": spec.model.model_copy(update={"sweep": Sweep(parameters={
        "optimizer.lr": [0.01, 0.1]})})})
    (train, *_) = plan_pipeline(swept, spec_hash=spec_hash)
    models = [step.config["model"] for step in train.steps if step.kind == "train"]
    assert [model["optimizer"]["lr"] for model in models] == [0.01, 0.1]
    assert models[0]["sweep"] is None and train.step("evaluate.churn_classifier").config["model"]["sweep"]


def test_once_makes_a_result_per_object_and_keeps_the_object():
    from loopc.compiler.plan.memo import once

    memo, calls = {}, []

    def make(value):
        calls.append(value)
        return len(calls)

    first, equal = {"a": 1}, {"a": 1}
    assert once(memo, first, make) == once(memo, first, make) == 1
    assert once(memo, equal, make) == 2  # an equal but other object is made again: configs are shared by identity
    assert calls == [first, equal] and memo[id(first)][0] is first
