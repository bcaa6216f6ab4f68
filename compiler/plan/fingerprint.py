"""Content fingerprints: canonical JSON and the sha256 that decides whether a step re-runs."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from loopc.runtime.execution.runner import (
    RUNTIME_FORMAT,  # one version: bumped when step outputs change meaning
)

# Keys that never change what a step computes: free text and scheduler requests.
_IGNORED_KEYS = frozenset({"description", "resources"})
_CONTAINERS = (dict, list)


def canonical_json(value: Any) -> str:
    """One JSON text per value: sorted keys, no whitespace, UTF-8, NaN/Infinity rejected."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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
    kind: str, config: dict[str, Any], dep_fingerprints: Iterable[str], step_format: int
) -> str:
    """sha256 over kind, config, the sorted fingerprints of the deps and both format versions.

    Stable across runs, machines and dict order. Descriptions and resource requests are left
    out (see ``outcome_view``): asking for more memory does not make a model stale.
    """
    payload = {
        "kind": kind,
        "config": outcome_view(config),
        "deps": sorted(dep_fingerprints),
        "step_format": step_format,
        "runtime_format": RUNTIME_FORMAT,
    }
    return sha256_text(canonical_json(payload))
