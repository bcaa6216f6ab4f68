"""Content fingerprints: canonical JSON and the sha256 that decides whether a step re-runs."""

from __future__ import annotations

import hashlib
import json
from json.encoder import encode_basestring
from typing import Any, Iterable

from loopc.compiler.plan.memo import ByIdentity, once
from loopc.runtime.execution.runner import (
    RUNTIME_FORMAT,  # one version: bumped when step outputs change meaning
)

# Keys that never change what a step computes: free text and scheduler requests.
_IGNORED_KEYS = frozenset({"description", "resources"})
_CONTAINERS = (dict, list)
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_RUNTIME_FORMAT_TEXT = _CANONICAL.encode(RUNTIME_FORMAT)

Texts = ByIdentity
"""Canonical texts of config values already seen (``memo.once``)."""


def canonical_json(value: Any) -> str:
    """One JSON text per value: sorted keys, no whitespace, UTF-8, NaN/Infinity rejected."""
    return _CANONICAL.encode(value)


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8 (``str.encode``'s only default)."""
    return hashlib.sha256(text.encode()).hexdigest()


def outcome_view(value: Any) -> Any:
    """``value`` without the keys that cannot change a step's outputs (descriptions, resources)."""
    if type(value) is dict:
        return {k: outcome_view(v) if type(v) in _CONTAINERS else v
                for k, v in value.items() if k not in _IGNORED_KEYS}
    if type(value) is list:
        return [outcome_view(v) if type(v) in _CONTAINERS else v for v in value]
    return value


def step_fingerprint(
    kind: str, config: dict[str, Any], dep_fingerprints: Iterable[str], step_format: int, texts: Texts | None = None
) -> str:
    """sha256 over kind, config, the sorted fingerprints of the deps and both format versions.

    Stable across runs, machines and dict order. Descriptions and resource requests are left
    out (see ``outcome_view``): asking for more memory does not make a model stale. The text hashed is
    ``canonical_json({"kind", "config": outcome_view(config), "deps", "step_format", "runtime_format"})``,
    assembled from the canonical text of each config value; ``texts`` keeps those of container values
    for later calls, so a dict that several configs share (a spec model's dump) is encoded once.
    The values must not change while ``texts`` is in use.
    """
    config_text = _config_text(config, {} if texts is None else texts)
    deps_text = _strings_text(sorted(dep_fingerprints))
    return sha256_text(f'{{"config":{config_text},"deps":{deps_text},"kind":{canonical_json(kind)},'
                       f'"runtime_format":{_RUNTIME_FORMAT_TEXT},"step_format":{canonical_json(step_format)}}}')


def _strings_text(values: list[Any]) -> str:
    """``canonical_json(values)``; strings joined here without the encoder's set-up."""
    if all(type(value) is str for value in values):
        return "[" + ",".join(map(encode_basestring, values)) + "]"
    return canonical_json(values)


def _config_text(config: Any, texts: Texts) -> str:
    """``canonical_json(outcome_view(config))``, one value of ``config`` at a time."""
    if type(config) is not dict or not all(type(key) is str for key in config):
        return canonical_json(outcome_view(config))  # what json.dumps makes of other keys: not spelled out here
    items = [f"{encode_basestring(key)}:{_value_text(config[key], texts)}"
             for key in sorted(config) if key not in _IGNORED_KEYS]
    return "{" + ",".join(items) + "}"


def _value_text(value: Any, texts: Texts) -> str:
    """``canonical_json(outcome_view(value))``, from ``texts`` for a container seen before."""
    if type(value) not in _CONTAINERS:
        return canonical_json(value)
    return once(texts, value, lambda container: canonical_json(outcome_view(container)))
