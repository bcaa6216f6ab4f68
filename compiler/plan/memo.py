"""Results made once per object of a spec: the planner shares dumps and their texts between step configs."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

T = TypeVar("T")
ByIdentity = dict[int, tuple[Any, Any]]
"""id -> (the object, kept so that no other object takes its id while the memo lives; the result)."""


def once(memo: ByIdentity, value: T, make: Callable[[T], Any]) -> Any:
    """``make(value)``, made on the first call for this object and taken from ``memo`` after."""
    known = memo.get(id(value))
    if known is None:
        known = memo[id(value)] = (value, make(value))
    return known[1]
