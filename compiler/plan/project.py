"""Plans for everything ``load_project`` found: one plan set per pipeline file, CLI sweeps as trials."""

from __future__ import annotations

from typing import Any, Protocol, Sequence

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.plan.fingerprint import canonical_json, sha256_text
from loopc.compiler.plan.pipeline import Plan, plan_pipeline
from loopc.compiler.plan.sweeps import SHARED_MODEL_FIELDS, get_path
from loopc.compiler.spec.collector import collector_paused
from loopc.compiler.spec.models import Spec


class Loaded(Protocol):
    """What the planner needs of ``loopc.compiler.api.LoadedSpec``."""

    spec: Spec
    spec_hash: str
    sweep_point: dict[str, Any]
    display: str
    positions: dict[tuple[str | int, ...], tuple[str, int, int]]


def plan_project(loaded: Sequence[Loaded]) -> list[Plan]:
    """Every plan of every pipeline, in load order; specs of one file's CLI sweep become trials.

    Planning errors are located in the spec files (file:line:col of the node they name).
    """
    plans: list[Plan] = []
    with collector_paused():
        for group in by_pipeline(loaded):
            try:
                plans.extend(_plan_group(group))
            except SpecErrors as exc:
                raise SpecErrors([_located(error, group[0]) for error in exc.errors]) from None
    return plans


def _located(error: SpecError, item: Loaded) -> SpecError:
    """``error`` at the position of its spec path, when the planner could not know it."""
    from loopc.compiler.spec.locate import position_of

    if error.line or not getattr(item, "positions", None):
        return error
    parts = tuple(error.spec_path.split("."))
    if parts[:3] == ("model", "sweep", "parameters") and len(parts) > 3:
        parts = parts[:3] + (".".join(parts[3:]),)  # sweep parameter names contain dots
    file, line, column = position_of(parts, item.positions, (error.file, 0, 0))
    return SpecError(file, line, column, error.code, error.spec_path, error.message, error.hint)


def _plan_group(group: Sequence[Loaded]) -> list[Plan]:
    """The plans of one pipeline file (``group``: its specs, one per CLI sweep point)."""
    base = group[0]
    if len(group) == 1 and not base.sweep_point:
        return plan_pipeline(base.spec, spec_hash=base.spec_hash, source=base.display)
    points = trial_points_of(group)
    if not any(points[0]):  # every point gives the same model: one training is enough
        points = []
    group_hash = sha256_text(canonical_json([item.spec_hash for item in group]))
    return plan_pipeline(base.spec, spec_hash=group_hash, sweep_points=points, source=base.display)


def by_pipeline(loaded: Sequence[Loaded]) -> list[list[Loaded]]:
    """``loaded`` grouped by pipeline name (one group per pipeline file's CLI sweep), in load order."""
    groups: dict[str, list[Loaded]] = {}
    for item in loaded:
        groups.setdefault(item.spec.pipeline.name, []).append(item)
    return list(groups.values())


def trial_points_of(group: Sequence[Loaded]) -> list[dict[str, Any]]:
    """The model paths that differ between the sweep's specs, with each spec's validated value.

    A path missing from some trial (``model=linear,mlp`` changes the architecture's keys) is
    replaced by its parent, so every point sets values the model accepts.
    """
    dumps = [item.spec.model_dump(mode="json") for item in group]
    _check_only_model_varies(group, dumps)
    models = [dump["model"] for dump in dumps]
    paths = sorted({p for model in models[1:] for p in _differing(models[0], model) if p.split(".")[0] != "sweep"})
    paths = sorted({_present_in_all(path, models) for path in paths})
    paths = [p for p in paths if not any(p.startswith(f"{other}.") for other in paths)]
    return [{f"model.{p}": get_path(model, p) for p in paths} for model in models]


def _check_only_model_varies(group: Sequence[Loaded], dumps: list[dict[str, Any]]) -> None:
    base = dumps[0]
    for item, dump in zip(group[1:], dumps[1:]):
        shared = tuple(f"model.{f}" for f in SHARED_MODEL_FIELDS)
        outside = [p for p in _differing(base, dump) if not p.startswith("model.") or p.startswith(shared)]
        if outside:
            raise SpecErrors([SpecError(
                item.display, 0, 0, "LPC703", outside[0],
                f"the multirun sweep {item.sweep_point} changes '{outside[0]}'; trials of one plan "
                "share their data and feature steps, so a sweep may vary only how the model trains",
                "sweep model.* paths (not its name, dataset, label or features), or compile once per value",
            )])


def _differing(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            path = f"{prefix}{key}"
            if key not in a or key not in b:
                out.append(path)
            else:
                out.extend(_differing(a[key], b[key], f"{path}."))
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _present_in_all(path: str, models: list[dict[str, Any]]) -> str:
    while "." in path and not all(_has(model, path) for model in models):
        path = path.rsplit(".", 1)[0]
    return path


def _has(data: Any, path: str) -> bool:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True
