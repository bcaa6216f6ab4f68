"""A safe, vectorized expression language over table columns (parsed with ``ast``, whitelisted).

Grammar: numbers, quoted strings, column names, ``+ - * / // % **``, unary ``- +``,
comparisons (chained too), ``and or not``, and the calls ``abs log exp sqrt min(a, b)
max(a, b) is_null(x)``. Nothing else parses: no attributes, subscripts, keywords or
other calls, so an expression can never reach Python objects. Evaluation is numpy over
whole columns: numeric nulls are NaN, text nulls are None, arithmetic with a null gives
NaN, a comparison with a null is false, and ``and``/``or``/``not`` treat NaN as false.
"""

from __future__ import annotations

import ast
import functools
import warnings
from collections.abc import Mapping
from typing import Any

np: Any = None  # numpy, imported by _numpy() on first evaluation: validating a spec only parses expressions

MAX_LENGTH = 2000
MAX_DEPTH = 60

# Operators and functions -> the names of the numpy functions that evaluate them.
_BINARY = {
    ast.Add: ("+", "add"),
    ast.Sub: ("-", "subtract"),
    ast.Mult: ("*", "multiply"),
    ast.Div: ("/", "true_divide"),
    ast.FloorDiv: ("//", "floor_divide"),
    ast.Mod: ("%", "mod"),
    ast.Pow: ("**", "power"),
}
_COMPARE = {
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
}
_FUNCTIONS = {
    "abs": (1, "abs"),
    "log": (1, "log"),
    "exp": (1, "exp"),
    "sqrt": (1, "sqrt"),
    "min": (2, "minimum"),
    "max": (2, "maximum"),
    "is_null": (1, None),
}
_ALLOWED_NODES = (
    ast.Expression, ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.Call, ast.Name, ast.Constant,
    ast.Load, ast.USub, ast.UAdd, ast.Not, ast.And, ast.Or, *_BINARY, *_COMPARE,
)


class ExpressionError(ValueError):
    """An expression that does not parse, is not allowed, or cannot be evaluated on the given columns."""

    def __init__(self, message: str, token: str | None = None):
        super().__init__(message)
        self.message = message
        self.token = token


def _token(node: ast.AST, text: str) -> str:
    """The source text of ``node``, for error messages."""
    return ast.get_source_segment(text, node) or type(node).__name__


def _describe(node: ast.AST, text: str) -> str:
    names = {ast.Attribute: "attribute access", ast.Subscript: "indexing", ast.Lambda: "lambda"}
    what = names.get(type(node), f"'{type(node).__name__}' syntax")
    return f"{what} is not allowed in an expression: '{_token(node, text)}'"


def _check_node(node: ast.AST, text: str) -> None:
    """Raise ExpressionError unless ``node`` is on the whitelist."""
    if not isinstance(node, _ALLOWED_NODES):
        raise ExpressionError(_describe(node, text), _token(node, text))
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str)):
        raise ExpressionError(f"constant {node.value!r} is not allowed in an expression", repr(node.value))
    if isinstance(node, ast.Name) and node.id.startswith("__"):
        raise ExpressionError(f"name '{node.id}' is not allowed in an expression", node.id)
    if isinstance(node, ast.Call):
        _check_call(node, text)


def _check_call(node: ast.Call, text: str) -> None:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    if name not in _FUNCTIONS:
        token = name or _token(node.func, text)
        allowed = ", ".join(sorted(_FUNCTIONS))
        raise ExpressionError(f"function '{token}' is not allowed; use one of {allowed}", token)
    arity = _FUNCTIONS[name][0]
    if node.keywords or len(node.args) != arity or any(isinstance(a, ast.Starred) for a in node.args):
        raise ExpressionError(f"{name}() takes exactly {arity} positional argument(s)", name)


def _depth(tree: ast.AST) -> int:
    """Nesting depth of ``tree``, computed without recursion."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in ast.iter_child_nodes(node))
    return deepest


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> ast.Expression:
    """Parse and whitelist ``text``; the tree is safe to evaluate with :func:`evaluate`."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("an expression must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        where = f" at column {error.offset}" if error.offset else ""
        raise ExpressionError(f"invalid expression '{text}': {error.msg}{where}", text) from None
    except (ValueError, RecursionError, MemoryError):
        raise ExpressionError(f"invalid expression '{text[:80]}': cannot be parsed", text[:80]) from None
    if _depth(tree) > MAX_DEPTH:
        raise ExpressionError(f"expression nests deeper than {MAX_DEPTH} levels")
    for node in ast.walk(tree):
        _check_node(node, text.strip())
    return tree


def columns_in(expr: str) -> set[str]:
    """The column names ``expr`` reads (function names excluded)."""
    tree = parse(expr)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and id(n) not in called}


def evaluate(expr: str, columns: Mapping[str, np.ndarray], rows: int | None = None) -> np.ndarray:
    """Evaluate ``expr`` over whole columns; a constant result is broadcast to ``rows``.

    ``rows`` defaults to the length of the first column given. Numeric columns should be
    float with NaN for nulls; text columns object arrays with None for nulls.
    """
    tree = parse(expr)
    _numpy()
    missing = sorted(columns_in(expr) - set(columns))
    if missing:
        known = ", ".join(sorted(columns)) or "none"
        raise ExpressionError(f"unknown column '{missing[0]}' in '{expr}' (columns: {known})", missing[0])
    if rows is None:
        rows = len(next(iter(columns.values()))) if columns else 1
    evaluator = _Evaluator(expr.strip(), columns)
    try:
        with np.errstate(all="ignore"):
            result = np.asarray(evaluator.visit(tree.body))
    except (TypeError, ValueError) as error:
        if isinstance(error, ExpressionError):
            raise
        raise ExpressionError(f"cannot evaluate '{expr}': {error}", expr) from None
    return np.broadcast_to(result, (rows,)).copy() if result.ndim == 0 else result


class _Evaluator:
    """Walks a whitelisted tree, combining numpy arrays."""

    def __init__(self, text: str, columns: Mapping[str, np.ndarray]):
        self.text = text
        self.columns = columns

    def visit(self, node: ast.AST):
        return getattr(self, f"_{type(node).__name__}")(node)

    def _Constant(self, node: ast.Constant):
        if isinstance(node.value, str):
            return np.asarray(node.value, dtype=object)
        try:
            return np.float64(node.value)
        except OverflowError:
            token = _token(node, self.text)
            raise ExpressionError(f"number '{token[:20]}...' is too large", token) from None

    def _Name(self, node: ast.Name):
        return np.asarray(self.columns[node.id])

    def _numeric(self, value, node: ast.AST) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind in "biuf":
            return array.astype(np.float64, copy=False)
        token = _token(node, self.text)
        raise ExpressionError(f"'{token}' is text, but arithmetic needs numbers", token)

    def _truth(self, value, node: ast.AST) -> np.ndarray:
        array = self._numeric(value, node)
        return (array != 0) & ~np.isnan(array)

    def _BinOp(self, node: ast.BinOp):
        left = self._numeric(self.visit(node.left), node.left)
        right = self._numeric(self.visit(node.right), node.right)
        return getattr(np, _BINARY[type(node.op)][1])(left, right)

    def _UnaryOp(self, node: ast.UnaryOp):
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return ~self._truth(operand, node.operand)
        value = self._numeric(operand, node.operand)
        return -value if isinstance(node.op, ast.USub) else value

    def _BoolOp(self, node: ast.BoolOp):
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        result = self._truth(self.visit(node.values[0]), node.values[0])
        for operand in node.values[1:]:
            result = combine(result, self._truth(self.visit(operand), operand))
        return result

    def _Compare(self, node: ast.Compare):
        result, left = None, self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators):
            right = self.visit(right_node)
            part = self._compare(op, left, right, right_node)
            result = part if result is None else result & part
            left = right
        return result

    def _compare(self, op: ast.cmpop, left, right, node: ast.AST) -> np.ndarray:
        left, right = np.asarray(left), np.asarray(right)
        if (left.dtype == object) != (right.dtype == object):
            token = _token(node, self.text)
            raise ExpressionError(f"cannot compare text with a number near '{token}'", token)
        if left.dtype == object:
            valid = _not_none(left) & _not_none(right)
            try:
                compared = getattr(np, _COMPARE[type(op)])(np.where(valid, left, ""), np.where(valid, right, ""))
            except TypeError:
                raise ExpressionError(f"cannot compare values near '{_token(node, self.text)}'") from None
            return np.asarray(compared, dtype=bool) & valid
        return np.asarray(getattr(np, _COMPARE[type(op)])(left.astype(float), right.astype(float)), dtype=bool)

    def _Call(self, node: ast.Call):
        name = node.func.id
        args = [self.visit(arg) for arg in node.args]
        if name == "is_null":
            value = np.asarray(args[0])
            return ~_not_none(value) if value.dtype == object else np.isnan(self._numeric(value, node.args[0]))
        numbers = [self._numeric(arg, arg_node) for arg, arg_node in zip(args, node.args)]
        return getattr(np, _FUNCTIONS[name][1])(*numbers)


def truth(values: np.ndarray) -> np.ndarray:
    """Booleans from an evaluated result: non-zero numbers are true, NaN and zero are false."""
    values = _numpy().asarray(values)
    if values.dtype == bool:
        return values
    if values.dtype.kind not in "iuf":
        raise ExpressionError("the expression gives text where true/false is needed")
    return (values != 0) & ~np.isnan(values.astype(np.float64))


def _not_none(array: np.ndarray) -> np.ndarray:
    """True where an object array holds a value (not None)."""
    return np.asarray(np.not_equal(array, None), dtype=bool)


def _numpy() -> Any:
    """numpy, imported on first use (into the module global ``np``)."""
    global np
    if np is None:
        import numpy

        np = numpy
    return np
