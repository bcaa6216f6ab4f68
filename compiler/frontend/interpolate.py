"""Resolve ``${...}`` interpolations with OmegaConf, only when a spec contains one.

Only resolvers that read the spec itself run: ``oc.select``, ``oc.dict.keys`` and ``oc.dict.values``
(ALLOWED_RESOLVERS). Every other resolver is refused before anything resolves (LPC411): ``oc.env`` reads
the environment (a secret would be compiled into DAG files and step documents; ``pipeline.secrets``
names it instead, without its value), ``oc.decode`` and ``oc.create`` parse text
as YAML outside loopc's loader checks, ``oc.deprecated`` and resolvers other libraries register are not
part of the spec language, and a resolver name built from an interpolation cannot be checked.
"""

from __future__ import annotations

from typing import Any, Iterator

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.frontend.tree import select, set_located

INTERPOLATION_NODE_BUDGET = 20_000  # nodes resolved interpolations may produce in one spec (OmegaConf is slow)
ALLOWED_RESOLVERS = frozenset({"oc.select", "oc.dict.keys", "oc.dict.values"})


def resolve_interpolations(tree: dict[str, Any], positions: dict[SpecPath, Position]) -> list[SpecError]:
    """Replace every interpolated string in ``tree`` by its value; failures become LPC408 errors."""
    paths = list(_interpolated(tree, ()))
    if not paths:
        return []
    refused = [error for path in paths for error in _refused_resolvers(tree, positions, path)]
    if refused:
        return refused
    from omegaconf import (
        OmegaConf,  # imported only when needed: it costs more than the rest of a load
    )

    config = OmegaConf.create(tree)
    errors, resolved = [], []
    budget = [INTERPOLATION_NODE_BUDGET]
    for path in paths:
        try:
            node: Any = config
            for key in path:
                node = node[key]
            resolved.append((path, _plain(node, budget)))
        except _TooLarge:
            file, line, col = positions.get(path, ("<unknown>", 1, 1))
            message = f"interpolations expand to more than {INTERPOLATION_NODE_BUDGET} nodes (an interpolation bomb?)"
            hint = "refer to large sections fewer times"
            return [*errors, SpecError(file, line, col, "LPC007", ".".join(map(str, path)), message, hint)]
        except Exception as exc:  # noqa: BLE001 - OmegaConf raises many types; each is a user error here
            file, line, col = positions.get(path, ("<unknown>", 1, 1))
            message = f"cannot resolve interpolation {select(tree, path)!r}: {_first_line(exc)}"
            hint = "refer to an existing key with ${path.to.key}"
            errors.append(SpecError(file, line, col, "LPC408", ".".join(map(str, path)), message, hint))
    for path, value in resolved:
        set_located(tree, positions, path, value, positions.get(path, ("<unknown>", 1, 1)), merge=False)
    return errors


def _refused_resolvers(tree: dict[str, Any], positions: dict[SpecPath, Position], path: SpecPath) -> list[SpecError]:
    """LPC411 for every resolver in the string at ``path`` outside ALLOWED_RESOLVERS."""
    text = select(tree, path)
    names = sorted(set(resolver_names(text)) - ALLOWED_RESOLVERS)
    if not names:
        return []
    file, line, col = positions.get(path, ("<unknown>", 1, 1))
    shown = ", ".join(repr(n) for n in names)
    message = f"interpolation {text!r} uses resolver {shown}; loopc runs only resolvers that read the spec itself"
    hint = ("write the value into the spec or an override; name a secret in pipeline.secrets (its value is never "
            f"written); allowed resolvers: {', '.join(sorted(ALLOWED_RESOLVERS))}")
    return [SpecError(file, line, col, "LPC411", ".".join(map(str, path)), message, hint)]


def resolver_names(text: str) -> list[str]:
    """The resolver names in an interpolated string (a name built from ``${...}`` is returned as written)."""
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser

    try:
        root = grammar_parser.parse(text, parser_rule="configValue", lexer_mode="DEFAULT_MODE")
    except GrammarParseError:
        return []  # not an interpolation OmegaConf can run: resolving it reports LPC408
    names, stack = [], [root]
    while stack:
        node = stack.pop()
        if isinstance(node, OmegaConfGrammarParser.ResolverNameContext):
            names.append(node.getText())
        stack.extend(node.getChild(i) for i in range(getattr(node, "getChildCount", lambda: 0)()))
    return names


class _TooLarge(Exception):
    """Resolved interpolations passed INTERPOLATION_NODE_BUDGET nodes."""


def _plain(value: Any, budget: list[int]) -> Any:
    """``value`` (a resolved OmegaConf node) as plain dicts and lists, spending one unit of ``budget`` per node."""
    from omegaconf import DictConfig, ListConfig

    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(value, DictConfig):
        return {key: _plain(value[key], budget) for key in value}
    if isinstance(value, ListConfig):
        return [_plain(value[index], budget) for index in range(len(value))]
    return value


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


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
