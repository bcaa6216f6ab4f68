"""The expression language: what it computes, what it refuses, and that hostile text never runs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopc.runtime.data.expressions import ExpressionError, columns_in, evaluate, parse

COLUMNS = {
    "a": np.array([1.0, 2.0, np.nan, -4.0]),
    "b": np.array([0.0, 1.0, 2.0, 3.0]),
    "c": np.array(["x", None, "y", "x"], dtype=object),
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("a / (b + 1)", [1.0, 1.0, np.nan, -1.0]),
        ("a * 2 - b ** 2", [2.0, 3.0, np.nan, -17.0]),
        ("-a + abs(a)", [0.0, 0.0, np.nan, 8.0]),
        ("b // 2 + b % 2", [0.0, 1.0, 1.0, 2.0]),
        ("min(a, b) + max(a, b)", [1.0, 3.0, np.nan, -1.0]),
        ("sqrt(b) * sqrt(b)", [0.0, 1.0, 2.0, 3.0]),
        ("log(exp(b))", [0.0, 1.0, 2.0, 3.0]),
        ("0 <= b < 2", [True, True, False, False]),
        ("a > 0 and not b == 1", [True, False, False, False]),
        ("is_null(a) or a < 0", [False, False, True, True]),
        ("c == 'x'", [True, False, False, True]),
        ("is_null(c)", [False, True, False, False]),
        ("a >= b", [True, True, False, False]),
        ("3", [3.0, 3.0, 3.0, 3.0]),
    ],
)
def test_evaluates_vectorized_with_nulls(expr, expected):
    result = evaluate(expr, COLUMNS)
    np.testing.assert_allclose(result.astype(float), np.array(expected, dtype=float), rtol=1e-12)
    assert result.shape == (4,)


def test_division_by_zero_gives_inf_or_nan_not_an_error():
    result = evaluate("a / (b - b)", COLUMNS)
    assert np.isinf(result[0]) and np.isnan(result[2])


def test_columns_in_names_columns_not_functions():
    assert columns_in("log(total_charges + 1) / max(tenure, 1) > is_null(x)") == {"total_charges", "tenure", "x"}
    assert columns_in("1 + 2") == set()


@pytest.mark.parametrize(
    ("expr", "token"),
    [
        ("__import__('os')", "__import__"),
        ("a.__class__", "a.__class__"),
        ("a[0]", "a[0]"),
        ("open('x')", "open"),
        ("lambda: 1", "lambda: 1"),
        ("abs(x=a)", "abs"),
        ("min(a)", "min"),
        ("a if b else c", "a if b else c"),
        ("[a, b]", "[a, b]"),
        ("__builtins__", "__builtins__"),
        ("missing + 1", "missing"),
        ("c + 1", "c"),
    ],
)
def test_refuses_with_the_offending_token(expr, token):
    with pytest.raises(ExpressionError) as info:
        evaluate(expr, COLUMNS)
    assert info.value.token == token
    assert token in str(info.value)


@pytest.mark.parametrize("expr", ["", "   ", "a +", "(a", "a ==", "1 +* 2", "a\x00"])
def test_syntax_errors_are_expression_errors(expr):
    with pytest.raises(ExpressionError):
        parse(expr)


def test_huge_powers_do_not_hang():
    assert np.isinf(evaluate("9 ** 9 ** 9 ** 9", COLUMNS)).all()


def test_huge_integer_literal_is_an_expression_error():
    with pytest.raises(ExpressionError, match="too large"):
        evaluate("1" + "0" * 400, COLUMNS)


def test_deep_nesting_is_refused_not_a_crash():
    with pytest.raises(ExpressionError):
        parse("-" * 1500 + "1")
    with pytest.raises(ExpressionError):
        parse("(" * 300 + "1" + ")" * 300)


FRAGMENTS = [
    "a", "b", "c", "1", "2.5", "'x'", "+", "-", "*", "/", "**", "//", "%", "(", ")", ",", ".", "[", "]",
    " and ", " or ", "not ", "<", "==", "abs(", "log(", "min(", "is_null(", "__import__('os')",
    "exec('raise SystemExit(3)')", "eval('1')", "__class__", "__subclasses__()", "open('/etc/passwd')",
    "lambda: 0", "getattr", ":", "=", "{", "}", "f'{a}'", "yield", "await ", " if ", " else ", "\\", "\n",
    "breakpoint()", "globals()", "__builtins__", "9" * 40, "0" * 330, "e9", "1e999", "0x", "_",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12).map("".join))
def test_hostile_fragments_never_execute(text):
    """Any mix of fragments gives a result or an ExpressionError: never SystemExit, never another error."""
    try:
        result = evaluate(text, COLUMNS)
    except ExpressionError:
        return
    assert isinstance(result, np.ndarray) and result.shape == (4,)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_gives_a_result_or_expression_error(text):
    try:
        result = evaluate(text, COLUMNS)
    except ExpressionError:
        return
    assert isinstance(result, np.ndarray)


def test_hostile_call_has_no_side_effect(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(ExpressionError):
        evaluate(f"__import__('pathlib').Path('{target}').touch()", COLUMNS)
    with pytest.raises(ExpressionError):
        evaluate(f"open('{target}', 'w')", COLUMNS)
    assert not target.exists()
