"""Plain YAML trees with a source map: OmegaConf-style merge, select, update and delete."""

from __future__ import annotations

from typing import Any

from loopc.compiler.frontend.load import Position, SpecPath

_MISSING = object()


class MergeConflict(Exception):
    """A mapping and a list met at the same path (OmegaConf cannot merge them either)."""

    def __init__(self, path: SpecPath, old: Any, new: Any):
        self.path = path
        super().__init__(f"cannot merge a {_kind(new)} into a {_kind(old)}")


def _kind(value: Any) -> str:
    return "mapping" if isinstance(value, dict) else "list" if isinstance(value, list) else "value"


def copy_located(value: Any, src_pos: dict[SpecPath, Position], src_path: SpecPath,
                 positions: dict[SpecPath, Position], at: SpecPath) -> Any:
    """Deep-copy ``value`` written at ``src_path`` to ``at``, copying the positions of its nodes."""
    if (pos := src_pos.get(src_path)) is not None:
        positions[at] = pos
    if isinstance(value, dict):
        return {k: copy_located(v, src_pos, (*src_path, k), positions, (*at, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_located(v, src_pos, (*src_path, i), positions, (*at, i)) for i, v in enumerate(value)]
    return value


def drop_positions(value: Any, positions: dict[SpecPath, Position], at: SpecPath) -> None:
    """Forget the positions of every node below ``at`` (the subtree is being replaced)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        positions.pop((*at, key), None)
        drop_positions(child, positions, (*at, key))


def merge_located(dst: dict[str, Any], positions: dict[SpecPath, Position], src: dict[str, Any],
                  src_pos: dict[SpecPath, Position], at: SpecPath = (), src_path: SpecPath = ()) -> None:
    """Merge ``src`` into ``dst`` like ``OmegaConf.merge``: mappings recurse, everything else replaces."""
    for key, value in src.items():
        here, there = (*at, key), (*src_path, key)
        old = dst.get(key, _MISSING)
        if isinstance(value, dict) and isinstance(old, dict):
            if (pos := src_pos.get(there)) is not None:
                positions[here] = pos
            merge_located(old, positions, value, src_pos, here, there)
            continue
        if isinstance(old, (dict, list)) and isinstance(value, (dict, list)) and type(old) is not type(value):
            raise MergeConflict(here, old, value)
        if old is not _MISSING:
            drop_positions(old, positions, here)
        dst[key] = copy_located(value, src_pos, there, positions, here)


def select(tree: Any, path: SpecPath) -> Any:
    """The node at ``path`` or ``_MISSING``."""
    node = tree
    for key in path:
        if isinstance(node, dict) and key in node:
            node = node[key]
        elif isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node):
            node = node[key]
        else:
            return _MISSING
    return node


def exists(tree: Any, path: SpecPath) -> bool:
    """Whether ``path`` names a node of ``tree``."""
    return select(tree, path) is not _MISSING


def split_key(key: str, tree: Any = None) -> SpecPath:
    """``model.optimizer.lr`` -> ('model', 'optimizer', 'lr'); numeric parts index lists in ``tree``."""
    parts: list[str | int] = []
    node = tree
    for part in key.split("."):
        if isinstance(node, list) and part.isdigit():
            parts.append(int(part))
        else:
            parts.append(part)
        node = select(node, (parts[-1],)) if node is not None else None
        node = None if node is _MISSING else node
    return tuple(parts)


def set_located(tree: dict[str, Any], positions: dict[SpecPath, Position], path: SpecPath, value: Any,
                position: Position, merge: bool = True) -> None:
    """Set ``path`` to ``value`` (creating parent mappings); mappings merge into mappings."""
    node: Any = tree
    for depth, key in enumerate(path[:-1]):
        child = select(node, (key,))
        if not isinstance(child, (dict, list)):
            child = {}
            node[key] = child
            positions.setdefault(path[: depth + 1], position)
        node = child
    last = path[-1]
    old = select(node, (last,))
    value_pos = _flat_positions(value, position)
    if merge and isinstance(value, dict) and isinstance(old, dict):
        positions[path] = position
        merge_located(old, positions, value, value_pos, path)
        return
    if old is not _MISSING:
        drop_positions(old, positions, path)
    node[last] = copy_located(value, value_pos, (), positions, path)


def _flat_positions(value: Any, position: Position, at: SpecPath = ()) -> dict[SpecPath, Position]:
    found = {at: position}
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.update(_flat_positions(child, position, (*at, key)))
    return found


def delete_located(tree: dict[str, Any], positions: dict[SpecPath, Position], path: SpecPath) -> None:
    """Remove the node at ``path`` (which must exist) and its positions."""
    parent = select(tree, path[:-1])
    old = parent[path[-1]]
    drop_positions(old, positions, path)
    positions.pop(path, None)
    del parent[path[-1]]
