"""Apply key overrides (key=value, +key=value, ++key=value, ~key) to a composed tree, as Hydra does."""

from __future__ import annotations

import difflib
from typing import Any

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.frontend.overrides import OVERRIDE_FILE, Override, override_error
from loopc.compiler.frontend.tree import (
    delete_located,
    exists,
    select,
    set_located,
    split_key,
)


def apply_key_overrides(tree: dict[str, Any], positions: dict[SpecPath, Position],
                        overrides: list[Override]) -> list[SpecError]:
    """Apply ``overrides`` in order; every one that cannot apply becomes an error."""
    errors = []
    for override in overrides:
        error = _apply(tree, positions, override)
        if error is not None:
            errors.append(error)
    return errors


def _apply(tree: dict[str, Any], positions: dict[SpecPath, Position], override: Override) -> SpecError | None:
    if override.package is not None:
        message = f"'{override.group_key}' looks like a config group override, but there is no group '{override.key}'"
        return override_error(override, override.text, override.index, "LPC402", message)
    path = split_key(override.key, tree)
    where: Position = (OVERRIDE_FILE, override.index + 1, 1)
    current = select(tree, path)
    present = exists(tree, path)
    if override.prefix == "~":
        return _delete(tree, positions, override, path, current if present else None)
    if override.prefix == "+" and present and current is not None and not isinstance(override.value, (dict, list)):
        message = f"'{override.key}' already exists"
        hint = f"drop the '+' to change it ('{override.text[1:]}') or write '+{override.text}' to add or change"
        return override_error(override, override.text, override.index, "LPC406", message, hint)
    if override.prefix == "" and not present:
        return _missing_key(tree, override, path)
    parent = select(tree, path[:-1])
    if override.prefix == "" and not isinstance(parent, dict) and not isinstance(path[-1], int):
        return _missing_key(tree, override, path)
    outside = _outside_a_list(tree, path)
    if outside is not None:
        return override_error(override, override.text, override.index, "LPC405", outside,
                              "a list item is changed by its index (0, 1, ...); to replace the list write key=[...]")
    clash = _shape_clash(current, override.value) if present else None
    if clash is None and override.prefix == "" and present:
        clash = _new_keys(current, override.value)
    if clash is not None:
        return override_error(override, override.text, override.index, "LPC410" if "merge" in clash else "LPC405",
                              clash, f"to add keys write '+{override.text}'" if "merge" not in clash else None)
    set_located(tree, positions, path, override.value, where, merge=True)
    return None


def _shape_clash(current: Any, value: Any) -> str | None:
    """Why ``value`` cannot merge into ``current`` (a mapping meets a list), as OmegaConf refuses; else None."""
    if isinstance(current, (dict, list)) and isinstance(value, (dict, list)) and type(current) is not type(value):
        kinds = {dict: "mapping", list: "list"}
        return f"cannot merge a {kinds[type(value)]} into a {kinds[type(current)]}"
    return None


def _new_keys(current: Any, value: Any, at: str = "") -> str | None:
    """The first key a mapping value adds to an existing mapping: Hydra's key=value may only change keys."""
    if not (isinstance(current, dict) and isinstance(value, dict)):
        return None
    for key, child in value.items():
        if key not in current:
            return f"cannot override '{at}{key}': there is no such key"
        found = _new_keys(current[key], child, f"{at}{key}.")
        if found is not None:
            return found
    return None


def _outside_a_list(tree: dict[str, Any], path: SpecPath) -> str | None:
    """Why ``path`` cannot be written when it goes through a list by a missing index or a name; else None."""
    node: Any = tree
    for depth, key in enumerate(path):
        if isinstance(node, list):
            if not isinstance(key, int) or key >= len(node):
                where = ".".join(map(str, path[:depth]))
                return f"'{where}' is a list of {len(node)} items: it has no item '{key}'"
        elif not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return None


def _delete(tree: dict[str, Any], positions: dict[SpecPath, Position], override: Override, path: SpecPath,
            current: Any) -> SpecError | None:
    if current is None:
        return override_error(override, override.text, override.index, "LPC407",
                              f"cannot delete '{override.key}': it does not exist")
    if override.has_value and override.value != current:
        message = f"cannot delete '{override.key}': its value is {current!r}, not {override.value!r}"
        return override_error(override, override.text, override.index, "LPC407", message)
    delete_located(tree, positions, path)
    return None


def _missing_key(tree: dict[str, Any], override: Override, path: SpecPath) -> SpecError:
    depth = 0
    while depth < len(path) and exists(tree, path[: depth + 1]):
        depth += 1
    parent = select(tree, path[:depth])
    siblings = [str(k) for k in parent] if isinstance(parent, dict) else []
    close = difflib.get_close_matches(str(path[depth]), siblings, n=1)
    hint = f"did you mean '{'.'.join(map(str, (*path[:depth], close[0])))}'?" if close else (
        f"to add a new key write '+{override.text}'")
    message = f"cannot override '{override.key}': there is no such key"
    return override_error(override, override.text, override.index, "LPC405", message, hint)
