"""Tree difference of two JSON-like values: the paths where they differ, with both values."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

SpecPath = tuple[str | int, ...]
Op = Literal["changed", "added", "removed"]
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Missing:
    """The value on a side where a key does not exist."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Change:
    """``path`` differs: ``old`` on the base side, ``new`` on the head side (MISSING where absent)."""

    path: SpecPath
    old: Any
    new: Any

    @property
    def op(self) -> Op:
        return "added" if self.old is MISSING else "removed" if self.new is MISSING else "changed"

    @property
    def display(self) -> str:
        return display_path(self.path)


def compare(old: Any, new: Any, path: SpecPath = ()) -> list[Change]:
    """Every path where ``new`` differs from ``old``; dicts by key, lists of objects by index.

    A list of scalars, or two lists of different lengths, is one value. Numbers compare by value
    (``1`` equals ``1.0``) but a boolean never equals a number.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[Change] = []
        for key in [*new, *(k for k in old if k not in new)]:
            changes.extend(compare(old.get(key, MISSING), new.get(key, MISSING), (*path, key)))
        return changes
    if _object_lists(old, new):
        return [c for i, (a, b) in enumerate(zip(old, new)) for c in compare(a, b, (*path, i))]
    return [] if same_value(old, new) else [Change(path, old, new)]


def _object_lists(old: Any, new: Any) -> bool:
    return (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)
            and any(isinstance(v, (dict, list)) for v in [*old, *new]))


def same_value(a: Any, b: Any) -> bool:
    """Equality of JSON values in which ``True`` is not ``1`` (Python's ``==`` says it is)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b or _numbers(a, b) and a == b


def _numbers(a: Any, b: Any) -> bool:
    return isinstance(a, (int, float)) and isinstance(b, (int, float))


def display_path(path: SpecPath) -> str:
    """``gate.thresholds[0].min``; keys that are not identifiers in JSON brackets: ``columns["a b"]``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text or "<spec>"


def display_value(value: Any, limit: int | None = None) -> str:
    """A value as compact JSON (ASCII: control and bidi characters show escaped), cut at ``limit``."""
    if value is MISSING:
        return "(absent)"
    text = json.dumps(value, ensure_ascii=True, separators=(", ", ": "))
    return text if limit is None or len(text) <= limit else text[: limit - 3] + "..."
