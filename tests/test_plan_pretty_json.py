"""compiler/plan/pretty.py writes exactly what json.dumps(sort_keys=True, indent=2, ensure_ascii=False) writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopc.compiler.plan.pretty import pretty_json

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
KEYS = st.text() | st.integers().map(str)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                      | st.dictionaries(KEYS, inner, max_size=4), max_leaves=30)


def reference(value) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


@given(VALUES)
def test_any_json_value_is_written_as_the_standard_library_writes_it(value):
    assert pretty_json(value) == reference(value)


@pytest.mark.parametrize("value", [
    {10: "int", 2: "int"}, {2.5: "float", float("inf"): "inf"}, {True: "bool", False: "no"}, {None: "null"},
    {"é\u2028\x00\"\\": [float("nan"), float("inf"), -float("inf")]},
    [[], {}, [[]], {"a": {}}], {"b": 1, "a": [1, 2.0, -0.0, 10**30, 1e-7]},
])
def test_edge_keys_and_numbers(value):
    assert pretty_json(value) == reference(value)


@pytest.mark.parametrize("value", [{"a": 1, 2: 3}, {"a": {1, 2}}, object()])
def test_what_json_refuses_is_refused(value):
    with pytest.raises(TypeError):
        reference(value)
    with pytest.raises(TypeError):
        pretty_json(value)


@given(VALUES, st.integers(0, 3))
def test_a_value_written_before_is_placed_as_if_written_in_place(value, depth):
    from loopc.compiler.plan.pretty import Written

    whole, placed = value, Written(pretty_json(value))
    for level in range(depth):
        whole, placed = ([whole], [placed]) if level % 2 else ({"k": whole}, {"k": placed})
    assert pretty_json(placed) == reference(whole)
