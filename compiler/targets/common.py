"""What every backend emits the same way: step documents and the plan manifest (plan.json)."""

from __future__ import annotations

import re
from typing import Any

from loopc.compiler.plan.pipeline import STEP_FORMAT, Plan, Step, rendered_once, step_json
from loopc.compiler.plan.pretty import pretty_json

PLAN_FORMAT = 1
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # pipeline and plan names in comments and file names


def name_problems(plan: Plan) -> list[str]:
    """Pipeline and plan names a generated file cannot carry (specs give identifiers; plans built by hand may not)."""
    names = [("pipeline name", plan.pipeline), ("plan name", plan.name), ("triggered plan", plan.triggers)]
    return [f"{label} {value!r} must be made of letters, digits, '_', '.', '-'"
            for label, value in names if value is not None and not SAFE_NAME.match(value)]


def json_text(value: Any) -> str:
    """Deterministic JSON file text: sorted keys, two-space indent, LF, trailing newline."""
    return pretty_json(value) + "\n"


def step_file(step: Step) -> str:
    """Path of a step document relative to its plan folder: ``steps/<id>.json``."""
    return f"steps/{step.id}.json"


def plan_manifest(plan: Plan) -> dict[str, Any]:
    """The plan.json document: plan metadata and its steps in topological order."""
    return {
        "format": PLAN_FORMAT,
        "step_format": STEP_FORMAT,
        "pipeline": plan.pipeline,
        "plan": plan.name,
        "kind": plan.kind,
        "triggers": plan.triggers,
        "description": plan.description,
        "owner": plan.owner,
        "schedule": plan.schedule,
        "tags": list(plan.tags),
        "state_dir": plan.state_dir,
        "spec_hash": plan.spec_hash,
        **{name: value for name, value in (("store", plan.store), ("registry", plan.registry)) if value},
        "steps": [
            {
                "id": step.id, "kind": step.kind, "stage": step.stage, "deps": list(step.deps),
                "file": step_file(step), "fingerprint": step.fingerprint, "cacheable": step.cacheable,
                "resources": step.resources.to_dict(), "array": step.array, "array_index": step.array_index,
            }
            for step in plan.steps
        ],
    }


def plan_files(plan: Plan, folder: str | None = None) -> dict[str, str]:
    """``{folder}/plan.json`` and ``{folder}/steps/<id>.json`` for one plan (folder: the plan name)."""
    prefix = f"{plan.name if folder is None else folder}/".lstrip("/")
    files = {f"{prefix}plan.json": rendered_once(plan, ("plan",), plan, lambda: json_text(plan_manifest(plan)))}
    for step in plan.steps:
        files[f"{prefix}{step_file(step)}"] = step_json(plan, step)
    return files
