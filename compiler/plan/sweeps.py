"""Sweep expansion for the planner: grid points over model fields, applied to the model dict."""

from __future__ import annotations

import itertools
from typing import Any

from pydantic import ValidationError

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.spec.models import Model, Sweep

Point = dict[str, Any]  # dotted path into the model dict -> value


def grid_points(sweep: Sweep | None) -> list[Point]:
    """Every point of ``model.sweep``'s grid: product over parameters sorted by path."""
    if sweep is None:
        return []
    names = sorted(sweep.parameters)
    return [dict(zip(names, values)) for values in itertools.product(*(sweep.parameters[n] for n in names))]


SHARED_MODEL_FIELDS = ("name", "task", "dataset", "label", "features")  # trials share data and feature steps


def cli_model_points(points: list[Point] | None, source: str, model: Model | None = None) -> list[Point]:
    """CLI multirun points (spec paths) as model-relative points; empty points are dropped.

    One plan shares its data steps across trials, so a CLI sweep may vary only ``model.*``.
    A point ``{"model": {...}}`` (a sweep over the model config group) becomes one entry per
    top-level model field; with ``model`` given, fields no point changes are dropped.
    """
    flat = [_model_relative(point, source) for point in points or []]
    if model is not None:
        base = model.model_dump(mode="json")
        varied = {k for point in flat for k, v in point.items() if "." in k or base.get(k) != v}
        flat = [{k: v for k, v in point.items() if k in varied} for point in flat]
        shared = sorted(varied.intersection(SHARED_MODEL_FIELDS))
        if shared:
            raise SpecErrors([_error(
                source, "LPC703", f"model.{shared[0]}",
                f"a multirun sweep changes model.{shared[0]}; trials of one plan share their data and "
                "feature steps", "sweep how the model trains, or compile once per value",
            )])
    return [point for point in flat if point]


def _model_relative(point: Point, source: str) -> Point:
    outside = sorted(path for path in point if path != "model" and not str(path).startswith("model."))
    if outside or not isinstance(point.get("model", {}), dict):
        where = outside[0] if outside else "model"
        raise SpecErrors([_error(
            source, "LPC703", where,
            f"a multirun sweep over '{where}' varies more than the model; "
            "trials of one plan share their data and feature steps",
            "sweep only model.* paths, or compile once per value",
        )])
    flat = {k: v for k, v in point.get("model", {}).items() if k != "sweep"}
    flat.update({str(path)[len("model."):]: value for path, value in point.items() if path != "model"})
    return flat


def trial_points(model: Model, cli_points: list[Point] | None, source: str) -> list[Point]:
    """All trials: CLI points (outer) x ``model.sweep`` grid (inner); empty list means no sweep."""
    outer = cli_model_points(cli_points, source, model) or [{}]
    inner = grid_points(model.sweep) or [{}]
    points = [{**cli, **grid} for cli in outer for grid in inner]
    return [] if points == [{}] else points


def select_sweep(model: Model, points: list[Point]) -> dict[str, Any]:
    """The Sweep the select step ranks by: the model's own, else one built from CLI points."""
    if model.sweep is not None:
        sweep = model.sweep
        extra = {p: _distinct(points, p) for p in sorted({k for pt in points for k in pt}) if p not in sweep.parameters}
        if extra:
            sweep = sweep.model_copy(update={"parameters": {**sweep.parameters, **extra}})
    else:
        sweep = Sweep(parameters={p: _distinct(points, p) for p in sorted({k for pt in points for k in pt})})
    return sweep.model_dump(mode="json")


def apply_point(model: Model, point: Point, source: str) -> tuple[dict[str, Any], Point]:
    """The model dict with ``point`` applied and ``sweep`` removed, re-validated; and the canonical point."""
    data = model.model_dump(mode="json")
    data["sweep"] = None
    for path, value in point.items():
        _set_path(data, path, value, source)
    try:
        trial = Model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise SpecErrors([_error(
            source, "LPC702", f"model.sweep.parameters.{next(iter(point), '')}",
            f"sweep point {point} gives an invalid model: {where}: {first['msg']}",
            "use values the model field accepts",
        )]) from None
    dumped = trial.model_dump(mode="json")
    return dumped, {path: get_path(dumped, path) for path in sorted(point)}


def _set_path(data: dict[str, Any], path: str, value: Any, source: str) -> None:
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict) or not isinstance(node.get(part), dict):
            raise SpecErrors([_error(
                source, "LPC702", f"model.sweep.parameters.{path}",
                f"sweep path '{path}' does not lead into the model ('{part}' is not a mapping)",
                "write a dotted path into the model, e.g. optimizer.lr or architecture.hidden",
            )])
        node = node[part]
    node[parts[-1]] = value


def get_path(data: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` (``optimizer.lr``) of a nested dict."""
    node: Any = data
    for part in path.split("."):
        node = node[part]
    return node


def _distinct(points: list[Point], path: str) -> list[Any]:
    values: list[Any] = []
    for point in points:
        if path in point and point[path] not in values:
            values.append(point[path])
    return values


def _error(source: str, code: str, spec_path: str, message: str, hint: str | None) -> SpecError:
    return SpecError(source, 0, 0, code, spec_path, message, hint)
