"""Turn pydantic validation errors into located SpecErrors (LPC1xx) with a hint where one helps."""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from typing import Any, Sequence

from pydantic import BaseModel

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.spec.cron import CRON_HINT
from loopc.compiler.spec.locate import ALIASES, dotted, position_of, tree_path

_TYPES = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number", "string_type": "a string",
    "bool_type": "true or false", "bool_parsing": "true or false", "dict_type": "a mapping",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "list_type": "a list",
    "none_required": "null", "is_instance_of": "a different type",
}
_RANGE = {"greater_than", "greater_than_equal", "less_than", "less_than_equal", "too_short", "too_long",
          "string_too_short", "string_too_long", "multiple_of", "finite_number"}


def structure_errors(errors: list[dict[str, Any]], tree: dict[str, Any], positions: dict[SpecPath, Position],
                     root: type[BaseModel], fallback: Position) -> list[SpecError]:
    """One SpecError per pydantic error (union members that failed alike are reported once)."""
    found: dict[tuple[Position, str, str], SpecError] = {}
    for error in errors:
        converted = convert_error(error, tree, positions, root, fallback)
        key = ((converted.file, converted.line, converted.column), converted.code, converted.spec_path)
        found.setdefault(key, converted)
    return list(found.values())


def convert_error(error: dict[str, Any], tree: dict[str, Any], positions: dict[SpecPath, Position],
                  root: type[BaseModel], fallback: Position) -> SpecError:
    """One pydantic error -> SpecError located where the user wrote the offending node."""
    loc, kind = tuple(error["loc"]), error["type"]
    path = tree_path(loc, tree)
    file, line, col = position_of(path, positions, fallback)
    code, message, hint = _describe(kind, error, loc, root)
    return SpecError(file, line, col, code, dotted(path), message, hint)


def _describe(kind: str, error: dict[str, Any], loc: tuple, root: type[BaseModel]) -> tuple[str, str, str | None]:
    ctx = error.get("ctx") or {}
    got = _show(error.get("input"))
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else (f"allowed: {', '.join(allowed)}" if allowed else None)
        return "LPC101", f"unknown key '{loc[-1]}'", hint
    if kind == "missing":
        return "LPC102", f"missing required key '{loc[-1]}'", None
    if kind == "union_tag_not_found":
        return "LPC102", f"missing {ctx.get('discriminator', 'kind')}", f"one of {ctx.get('expected_tags', '')}"
    if kind in _TYPES:
        return "LPC103", f"expected {_TYPES[kind]}, got {got}", None
    if kind in ("literal_error", "union_tag_invalid", "enum"):
        return _not_allowed(ctx, error.get("input"), got)
    if kind in _RANGE:
        return "LPC105", f"{_lower(error['msg'])}, got {got}", None
    if kind == "string_pattern_mismatch":
        return "LPC106", f"{got} has the wrong format", _pattern_hint(loc, ctx.get("pattern", ""))
    if kind == "cron_schedule":
        return "LPC108", error["msg"], CRON_HINT
    if kind in ("value_error", "assertion_error"):
        return "LPC107", _lower(str(ctx.get("error", error["msg"]))), None
    code = "LPC103" if kind.endswith(("_type", "_parsing")) else "LPC104"
    return code, f"{_lower(error['msg'])}, got {got}", None


def _not_allowed(ctx: dict[str, Any], value: Any, got: str) -> tuple[str, str, str | None]:
    expected = str(ctx.get("expected") or ctx.get("expected_tags") or "")
    options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",") if o.strip()]
    close = difflib.get_close_matches(str(value if not isinstance(value, dict) else ctx.get("tag")), options, n=1)
    hint = f"did you mean '{close[0]}'?" if close else None
    shown = f"'{ctx['tag']}'" if "tag" in ctx else got
    return "LPC104", f"{shown} is not allowed; expected {expected}", hint


def _pattern_hint(loc: tuple, pattern: str) -> str | None:
    if "[a-z]" in pattern:
        return "use a lower-case identifier: a-z, 0-9 and _, starting with a letter"
    if "d)?" in pattern:
        return "write a duration such as '30m', '2h', '1d12h' or '45s'"
    if "\\x00" in pattern:
        return "a path has no control characters (line breaks, tabs, NUL)"
    if "_.+-" in pattern:
        return "use letters, digits, '_', '.', '+', '-' (a scheduler's partition, account, QoS, pool or queue name)"
    if "KMGT" in pattern:
        return "write a memory size such as '512M', '4G' or '16GiB'"
    return f"it must match {pattern}"


def _show(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _lower(message: str) -> str:
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    return message[:1].lower() + message[1:]


def allowed_keys(root: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """The field names of the model that ``loc`` (a pydantic loc, tags included) points into."""
    current: Any = root
    for element in loc:
        current = _step(current, element)
        if current is None:
            return []
    current = _unwrap(current)
    if inspect.isclass(current) and issubclass(current, BaseModel):
        fields = list(current.model_fields)
        return sorted(fields + [ALIASES[f] for f in fields if f in ALIASES])
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) != 1:
                return tp
            tp = members[0]
        else:
            return tp


def _step(tp: Any, element: str | int) -> Any:
    tp = _unwrap(tp)
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(element))
        return field.annotation if field else None
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (list, tuple):
        return args[0] if args else None
    if origin is dict:
        return args[1] if len(args) == 2 else None
    for member in args:  # a tagged union: the member whose 'kind' literal is the tag
        member = _unwrap(member)
        if inspect.isclass(member) and issubclass(member, BaseModel) and "kind" in member.model_fields:
            if element in typing.get_args(member.model_fields["kind"].annotation):
                return member
    return None
