"""Map pydantic error locations and spec paths to tree paths, readable spec paths and source positions."""

from __future__ import annotations

from typing import Any, Sequence

from loopc.compiler.frontend.load import Position, SpecPath

# Keys a model accepts under another name before validation (Feature: transform -> transforms).
ALIASES = {"transforms": "transform"}
UNKNOWN: Position = ("<unknown>", 1, 1)


def tree_path(loc: Sequence[str | int], tree: Any) -> SpecPath:
    """The path in ``tree`` that a pydantic ``loc`` points at: tags dropped, aliases followed.

    A trailing key that is absent from the tree (a missing field) is kept.
    """
    path: list[str | int] = []
    node, skip_index = tree, False
    for position, element in enumerate(loc):
        if element == "[key]":  # pydantic marks an invalid mapping key; the key itself is the node
            continue
        last = position == len(loc) - 1
        if isinstance(node, dict) and element in node:
            path.append(element)
            node = node[element]
        elif isinstance(node, dict) and ALIASES.get(str(element)) in node:
            path.append(ALIASES[str(element)])
            node = node[ALIASES[str(element)]]
            skip_index = not isinstance(node, list)
        elif isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            path.append(element)
            node = node[element]
        elif skip_index and isinstance(element, int):
            skip_index = False
        elif last and isinstance(node, dict) and isinstance(element, str):
            path.append(element)
            node = None
        # anything else is a union or discriminator tag that the user never wrote: drop it
    return tuple(path)


def dotted(path: SpecPath) -> str:
    """``('gate', 'thresholds', 0, 'min')`` -> ``gate.thresholds[0].min``."""
    text = ""
    for element in path:
        if isinstance(element, int):
            text += f"[{element}]"
        else:
            text += f".{element}" if text else str(element)
    return text


def position_of(path: SpecPath, positions: dict[SpecPath, Position], fallback: Position = UNKNOWN) -> Position:
    """Where ``path`` was written; for a node that does not exist, where its nearest parent was."""
    for depth in range(len(path), -1, -1):
        found = positions.get(path[:depth])
        if found is not None:
            return found
    return fallback
