"""Resolve ``${...}`` interpolations with OmegaConf, only when a spec contains one."""

from __future__ import annotations

from typing import Any, Iterator

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.frontend.tree import set_located


def resolve_interpolations(tree: dict[str, Any], positions: dict[SpecPath, Position]) -> list[SpecError]:
    """Replace every interpolated string in ``tree`` by its value; failures become LPC408 errors."""
    paths = list(_interpolated(tree, ()))
    if not paths:
        return []
    from omegaconf import (
        OmegaConf,  # imported only when needed: it costs more than the rest of a load
    )

    config = OmegaConf.create(tree)
    errors, resolved = [], []
    for path in paths:
        try:
            node: Any = config
            for key in path:
                node = node[key]
            if OmegaConf.is_config(node):
                node = OmegaConf.to_container(node, resolve=True)
            resolved.append((path, node))
        except Exception as exc:  # noqa: BLE001 - OmegaConf raises many types; each is a user error here
            file, line, col = positions.get(path, ("<unknown>", 1, 1))
            message = f"cannot resolve interpolation {_select(tree, path)!r}: {_first_line(exc)}"
            hint = "refer to an existing key with ${path.to.key}"
            errors.append(SpecError(file, line, col, "LPC408", ".".join(map(str, path)), message, hint))
    for path, value in resolved:
        set_located(tree, positions, path, value, positions.get(path, ("<unknown>", 1, 1)), merge=False)
    return errors


def _interpolated(node: Any, path: SpecPath) -> Iterator[SpecPath]:
    if isinstance(node, str):
        if "${" in node:
            yield path
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _interpolated(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _interpolated(value, (*path, index))


def _select(tree: Any, path: SpecPath) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
