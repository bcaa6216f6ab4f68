"""The step document every target hands the runtime: StepDoc and load_step."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP_FORMAT = 1
_REQUIRED = ("id", "kind", "deps", "fingerprint", "config")


class StepError(Exception):
    """A step could not run: a bad step document, a missing upstream, or a failed check.

    The message says what went wrong, where, and how to fix it; it is shown to users
    without a traceback.
    """


@dataclass(frozen=True)
class StepDoc:
    """One step of a compiled plan, as written by the planner (see docs/internals.md)."""

    id: str
    kind: str
    deps: tuple[str, ...]
    fingerprint: str
    config: dict[str, Any]
    pipeline: str = ""
    plan: str = ""
    stage: str = ""
    cacheable: bool = True
    state_dir: str = ".loopc"
    spec_hash: str = ""
    resources: dict[str, Any] = field(default_factory=dict)
    store: str | None = None  # compiled artifact store URL; $LOOPC_STORE overrides it
    registry: str | None = None  # compiled registry URL; $LOOPC_REGISTRY overrides it
    format: int = STEP_FORMAT


def step_from_dict(data: Any, source: str = "<step>") -> StepDoc:
    """Build a StepDoc from a parsed step document; StepError names the missing or bad field."""
    if not isinstance(data, dict):
        raise StepError(f"{source}: a step document is a JSON object, got {type(data).__name__}")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise StepError(
            f"{source}: step document lacks {', '.join(missing)}; "
            "recompile the plan with `loopc compile` so every step file is complete"
        )
    if data.get("format", STEP_FORMAT) != STEP_FORMAT:
        raise StepError(
            f"{source}: step format {data.get('format')} is not {STEP_FORMAT}; "
            "recompile with the loopc version installed here"
        )
    if not isinstance(data["config"], dict) or not isinstance(data["deps"], list):
        raise StepError(f"{source}: 'config' must be an object and 'deps' a list")
    known = set(StepDoc.__dataclass_fields__)
    values = {key: value for key, value in data.items() if key in known}
    values["deps"] = tuple(data["deps"])
    return StepDoc(**values)


def load_step(path: str | Path) -> StepDoc:
    """Read a step document (``steps/<id>.json``); StepError if it is missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StepError(f"{path}: cannot read the step document ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StepError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    return step_from_dict(data, str(path))


def step_depths(steps: list[dict[str, Any]]) -> dict[str, int]:
    """Each plan step's dependency depth (0 for a step with no dependencies); ``steps`` in topological order."""
    depth: dict[str, int] = {}
    for step in steps:
        depth[step["id"]] = 1 + max((depth[dep] for dep in step["deps"] if dep in depth), default=-1)
    return depth
