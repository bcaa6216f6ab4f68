"""The classification table covers every field of the Spec model, each by exactly one row."""

from __future__ import annotations

import types
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import BaseModel

from loopc.compiler.diff.classes import (
    CLASSES,
    DEFAULT_CLASS,
    RULES,
    classify,
    explicit_rules,
    matches,
    pattern_parts,
)
from loopc.compiler.diff.compare import MISSING, compare, display_path, same_value
from loopc.compiler.spec.models import Spec

Pattern = tuple[str, ...]


def field_paths(annotation: Any, prefix: Pattern = ()) -> list[Pattern]:
    """Every leaf field below ``annotation`` as pattern parts: ``*`` for mapping keys, ``[*]`` for list items.

    A list of scalars is one leaf (the diff compares it whole); ``Any`` and scalars are leaves.
    """
    origin = get_origin(annotation)
    if origin is Annotated:
        return field_paths(get_args(annotation)[0], prefix)
    if origin in (Union, types.UnionType):
        return _unique(p for arm in get_args(annotation) if arm is not type(None) for p in field_paths(arm, prefix))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [p for name, info in annotation.model_fields.items() for p in field_paths(info.annotation, (*prefix, name))]
    if origin is list:
        inner = field_paths(get_args(annotation)[0], (*prefix, "[*]"))
        return [prefix] if inner == [(*prefix, "[*]")] else inner
    if origin is dict:
        return field_paths(get_args(annotation)[1], (*prefix, "*"))
    return [prefix]


def _unique(paths) -> list[Pattern]:
    return list(dict.fromkeys(paths))


def example_path(pattern: Pattern) -> tuple[str | int, ...]:
    """A concrete spec path for a pattern: ``*`` -> a key, ``[*]`` -> index 0."""
    return tuple(0 if part == "[*]" else "some_key" if part == "*" else part for part in pattern)


SPEC_FIELDS = field_paths(Spec)


def test_the_walk_sees_every_section_and_nested_unions():
    shown = {".".join(p) for p in SPEC_FIELDS}
    assert len(SPEC_FIELDS) > 140
    assert {"loopc", "pipeline.resources.qos", "features.*.transforms.[*].quantiles", "model.architecture.hidden",
            "datasets.*.columns.*.allowed", "monitors.*.action.cooldown", "deploy.shadow.max_metric_drop.*"} <= shown


@pytest.mark.parametrize("pattern", SPEC_FIELDS, ids=lambda p: ".".join(p))
def test_every_field_of_the_spec_model_has_exactly_one_row(pattern):
    rules = explicit_rules(example_path(pattern))
    assert len(rules) == 1, f"{'.'.join(pattern)}: rows {[r.pattern for r in rules]}"


def test_every_row_names_a_field_of_the_spec_model():
    examples = [example_path(p) for p in SPEC_FIELDS]
    dead = [rule.pattern for rule in RULES if not any(matches(pattern_parts(rule.pattern), e) for e in examples)]
    assert dead == []


def test_rows_use_known_classes():
    assert {rule.klass for rule in RULES} == set(CLASSES)


def test_an_unknown_path_is_retrain_the_most_conservative_class():
    assert DEFAULT_CLASS == CLASSES[0] == "retrain"
    assert classify(("pipeline", "a_field_added_later")).klass == "retrain"
    assert classify(("something_new",)).klass == "retrain"


@pytest.mark.parametrize(("path", "klass"), [
    (("features", "new_feature"), "retrain"),  # a whole entry: its most conservative field
    (("gate", "thresholds"), "re-gate"),  # a list that grew: its items' rows
    (("monitors", "hourly"), "operational"),
    (("model", "training", "early_stopping"), "retrain"),
    (("datasets", "d", "columns", "c"), "retrain"),
    (("model", "sweep", "parameters", "optimizer.lr"), "retrain"),
    (("model", "sweep", "parameters", "architecture", 1, "kind"), "retrain"),  # below an untyped value
    (("deploy", "shadow", "max_metric_drop", "auc"), "re-gate"),
    (("pipeline", "secrets", "token"), "operational"),
    (("pipeline", "owner"), "metadata"),
])
def test_a_path_above_or_below_the_leaves_takes_the_rows_around_it(path, klass):
    assert classify(path).klass == klass


def test_a_new_entry_names_every_topic_of_its_most_conservative_class():
    assert classify(("datasets", "extra")).topic == "data checks, data source, schema, split"


def test_compare_reports_paths_with_both_values():
    old = {"a": 1, "b": [{"x": 1}, {"x": 2}], "c": [1, 2], "d": {"k": True}}
    new = {"a": 1.0, "b": [{"x": 1}, {"x": 3}], "c": [1, 3], "d": {"k": 1}, "e": "new"}
    changes = compare(old, new)
    assert [(display_path(c.path), c.op) for c in changes] == [
        ("b[1].x", "changed"), ("c", "changed"), ("d.k", "changed"), ("e", "added")]
    assert changes[-1].old is MISSING
    assert [c.op for c in compare({"gone": 1}, {})] == ["removed"]


def test_true_is_not_one_but_one_is_one_point_zero():
    assert same_value(1, 1.0) and same_value([1, {"a": 2}], [1.0, {"a": 2.0}])
    assert not same_value(True, 1) and not same_value([0], [False]) and not same_value("1", 1)


def test_display_path_quotes_keys_that_are_not_identifiers():
    assert display_path(("datasets", "d", "columns", "a b|c", "min")) == 'datasets.d.columns["a b|c"].min'
    assert display_path(("gate", "thresholds", 0, "min")) == "gate.thresholds[0].min"


_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0, 2.0]), st.sampled_from("ab"))
_trees = st.recursive(_scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)),
                      max_leaves=12)


@given(_trees, _trees)
def test_compare_finds_a_change_exactly_when_the_values_differ(old, new):
    changes = compare(old, new)
    assert (changes == []) == same_value(old, new)
    assert compare(old, old) == []
    for change in changes:
        assert not same_value(change.old, change.new)


@given(st.dictionaries(st.sampled_from("xyz"), _trees, min_size=1), st.sampled_from("xyz"), _trees)
def test_a_changed_key_is_reported_at_or_below_its_path(old, key, value):
    new = {**old, key: value}
    assume(not same_value(old.get(key, MISSING), value))
    paths = [c.path for c in compare(old, new)]
    assert paths and all(path[:1] == (key,) for path in paths)
