"""Fingerprints decide what re-runs: stable under key order, sensitive to what changes outputs."""

from __future__ import annotations

import copy
import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan_support import EXAMPLES, compose_tree, spec_from_tree

from loopc.compiler.plan.pipeline import StepGraph, plan_pipeline
from loopc.compiler.plan.steps import StepSpec

CHURN = compose_tree(EXAMPLES / "churn" / "pipeline.yaml")
DEMAND = compose_tree(EXAMPLES / "demand" / "pipeline.yaml")


def fingerprints(tree) -> dict[str, str]:
    spec, spec_hash = spec_from_tree(tree)
    return {s.id: s.fingerprint for plan in plan_pipeline(spec, spec_hash=spec_hash) for s in plan.steps}


def shuffled(value, rng: random.Random):
    """The same tree with every mapping's keys in a random order (lists keep their order)."""
    if isinstance(value, dict):
        keys = list(value)
        rng.shuffle(keys)
        return {k: shuffled(value[k], rng) for k in keys}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {step for step in before if before[step] != after.get(step)}


def test_planning_twice_gives_the_same_fingerprints():
    assert fingerprints(CHURN) == fingerprints(copy.deepcopy(CHURN))
    assert all(len(fp) == 64 for fp in fingerprints(CHURN).values())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), tree=st.sampled_from([CHURN, DEMAND]))
def test_permuting_yaml_mapping_keys_changes_no_fingerprint(seed, tree):
    permuted = shuffled(tree, random.Random(seed))
    assert fingerprints(permuted) == fingerprints(tree)
    spec, spec_hash = spec_from_tree(permuted)
    original, _ = spec_from_tree(tree)
    assert spec_hash == spec_from_tree(tree)[1]
    assert [s.id for s in plan_pipeline(spec, spec_hash=spec_hash)[0].steps] == [
        s.id for s in plan_pipeline(original, spec_hash=spec_hash)[0].steps]


def test_learning_rate_changes_training_and_everything_after_it_only():
    tree = copy.deepcopy(DEMAND)
    tree["model"]["optimizer"]["lr"] = 0.02
    assert changed(fingerprints(DEMAND), fingerprints(tree)) == {
        "train.demand_forecast", "evaluate.demand_forecast", "gate.demand_forecast",
        "register.demand_forecast", "shadow.demand_forecast", "promote.demand_forecast",
        "monitor.daily_drift",
    }


def test_dataset_check_change_reaches_every_training_step():
    tree = copy.deepcopy(CHURN)
    tree["datasets"]["customers"]["checks"][0]["min"] = 1000
    assert changed(fingerprints(CHURN), fingerprints(tree)) == {
        s for s in fingerprints(CHURN) if not s.startswith(("monitor.", "score."))}


def test_gate_threshold_change_leaves_training_cached():
    tree = copy.deepcopy(CHURN)
    tree["gate"]["thresholds"][0]["min"] = 0.75
    assert changed(fingerprints(CHURN), fingerprints(tree)) == {
        "evaluate.churn_classifier", "gate.churn_classifier", "register.churn_classifier",
        "shadow.churn_classifier", "promote.churn_classifier"}


def test_resources_and_descriptions_do_not_change_fingerprints():
    tree = copy.deepcopy(CHURN)
    tree["model"]["resources"]["memory"] = "8G"
    tree["pipeline"]["resources"]["time"] = "2h"
    tree["datasets"]["customers"]["description"] = "reworded"
    assert changed(fingerprints(CHURN), fingerprints(tree)) == set()


SWEEPABLE = {
    "optimizer.lr": st.floats(1e-5, 1.0),
    "training.seed": st.integers(0, 10_000),
    "training.epochs": st.integers(1, 50),
    "training.batch_size": st.integers(1, 4096),
}


@settings(max_examples=20, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(SWEEPABLE)), st.integers(1, 3), min_size=1, max_size=3), st.data())
def test_sweeps_expand_to_the_grid_product(sizes, data):
    parameters = {path: data.draw(st.lists(SWEEPABLE[path], min_size=n, max_size=n, unique=True))
                  for path, n in sizes.items()}
    tree = copy.deepcopy(DEMAND)
    tree["model"]["sweep"] = {"parameters": parameters}
    spec, spec_hash = spec_from_tree(tree)
    plan = plan_pipeline(spec, spec_hash=spec_hash)[0]
    trials = [s for s in plan.steps if s.kind == "train"]
    assert len(trials) == math.prod(len(v) for v in parameters.values())
    assert len({t.fingerprint for t in trials}) == len(trials)
    assert sorted(tuple(sorted(t.config["sweep_point"].items())) for t in trials) == sorted(
        {tuple(sorted(t.config["sweep_point"].items())) for t in trials})
    assert plan.step(f"select.{spec.model.name}").config["trials"] == [t.id for t in trials]


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 12).flatmap(lambda n: st.tuples(
    st.permutations([f"s{i:02d}" for i in range(n)]),
    st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda e: e[0] < e[1])),
)))
def test_order_respects_every_edge_and_is_deterministic(case):
    names, edges = case
    deps = {name: tuple(sorted(names[a] for a, b in edges if names[b] == name)) for name in names}
    order = []
    for reverse in (False, True):
        graph = StepGraph()
        for name in sorted(names, reverse=reverse):
            graph.add(StepSpec(name, "validate", {}, deps[name]))
        order.append([s.id for s in graph.order()])
    assert order[0] == order[1]
    position = {name: i for i, name in enumerate(order[0])}
    assert all(position[names[a]] < position[names[b]] for a, b in edges)


def _write_shuffled_project(source, target, rng: random.Random) -> None:
    """Copy an example with every YAML mapping's keys reordered (comments and @package headers kept)."""
    import yaml

    for path in sorted(source.rglob("*.yaml")):
        text = path.read_text()
        headers = "".join(line + "\n" for line in text.splitlines() if line.startswith("# @package"))
        out = target / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(headers + yaml.safe_dump(shuffled(yaml.safe_load(text), rng), sort_keys=False))


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), example=st.sampled_from(["churn", "demand"]))
def test_reordered_yaml_files_give_identical_plans(tmp_path_factory, seed, example):
    from loopc.compiler.api import load_project
    from loopc.compiler.targets.common import plan_manifest

    folder = tmp_path_factory.mktemp("shuffled")
    _write_shuffled_project(EXAMPLES / example, folder, random.Random(seed))
    (original,) = load_project(EXAMPLES / example / "pipeline.yaml")
    (reordered,) = load_project(folder / "pipeline.yaml")
    assert reordered.spec_hash == original.spec_hash
    before = plan_pipeline(original.spec, spec_hash=original.spec_hash)
    after = plan_pipeline(reordered.spec, spec_hash=reordered.spec_hash)
    assert [plan_manifest(p) for p in after] == [plan_manifest(p) for p in before]
