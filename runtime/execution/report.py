"""The self-contained HTML run report: DAG, timings, checks, metrics, gate, shadow, drift (no CDN)."""

from __future__ import annotations

import json
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from loopc.runtime.execution import runs
from loopc.runtime.execution.step import step_depths
from loopc.runtime.store.artifacts import atomic_write_bytes

STATUS_FILL = {"done": "#d9f2d9", "cached": "#d6eaf8", "skipped": "#fcf3cf", "failed": "#f5b7b1"}
# kind -> the JSON file in its artifact the report shows in detail
DETAIL_FILES = {"validate": "validation.json", "evaluate": "metrics.json", "gate": "gate.json",
                "shadow": "shadow.json", "monitor": "drift.json", "register": "version.json"}
BOX_W, BOX_H, GAP_X, GAP_Y = 190, 34, 50, 14


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("loopc.templates", "report"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _layout(steps: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """Column (dependency depth) and row of each step, in plan order."""
    rows: Counter[int] = Counter()
    place: dict[str, tuple[int, int]] = {}
    for step_id, level in step_depths(steps).items():
        place[step_id] = (level, rows[level])
        rows[level] += 1
    return place


def dag_svg(steps: list[dict[str, Any]], statuses: dict[str, str]) -> dict[str, Any]:
    """Boxes and edges of the plan's DAG, in pixels, for the template's inline SVG."""
    place = _layout(steps)
    xy = {sid: (col * (BOX_W + GAP_X) + 10, row * (BOX_H + GAP_Y) + 10) for sid, (col, row) in place.items()}
    boxes = [{"id": s["id"], "kind": s["kind"], "x": xy[s["id"]][0], "y": xy[s["id"]][1],
              "status": statuses.get(s["id"], "not run"),
              "fill": STATUS_FILL.get(statuses.get(s["id"], ""), "#eeeeee")} for s in steps]
    edges = []
    for step in steps:
        for dep in step["deps"]:
            if dep in xy:
                (x1, y1), (x2, y2) = xy[dep], xy[step["id"]]
                edges.append({"x1": x1 + BOX_W, "y1": y1 + BOX_H // 2, "x2": x2, "y2": y2 + BOX_H // 2})
    width = max((b["x"] for b in boxes), default=0) + BOX_W + 20
    height = max((b["y"] for b in boxes), default=0) + BOX_H + 20
    return {"boxes": boxes, "edges": edges, "width": width, "height": height, "box_w": BOX_W, "box_h": BOX_H}


def bars(values: dict[str, float], limit: float | None = None, width: int = 360) -> dict[str, Any]:
    """Horizontal bar chart geometry for ``{label: value}`` with an optional threshold line."""
    items = [(str(k), float(v)) for k, v in values.items() if isinstance(v, (int, float))]
    top = max([abs(v) for _, v in items] + [limit or 0.0, 1e-12])
    rows = [{"label": label, "value": value, "w": round(abs(value) / top * width, 1), "y": i * 22,
             "over": limit is not None and value > limit} for i, (label, value) in enumerate(items)]
    line = None if limit is None else round(limit / top * width, 1)
    return {"rows": rows, "width": width, "height": len(rows) * 22 + 4, "limit": limit, "line": line}


def _details(state: Path, run_id: str, record: dict[str, Any]) -> dict[str, Any] | None:
    """The step's detail file: in its artifact, or (a failed validation) beside the run records."""
    name = DETAIL_FILES.get(record.get("kind", ""))
    if not name:
        return None
    candidates = [state / record["artifact"] / name] if record.get("artifact") else []
    candidates.append(runs.run_dir(state, run_id) / "reports" / f"{record['step']}.{name}")
    for path in candidates:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
    return None


def _drift_charts(details: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One bar chart per drift statistic found in a monitor's drift report."""
    if not details:
        return []
    charts = []
    for method, per_column in sorted((details.get("statistics") or {}).items()):
        limit = (details.get("limits") or {}).get(method)
        charts.append({"title": method, "chart": bars(per_column, limit)})
    return charts


def report_view(result: Any) -> dict[str, Any]:
    """The plain view-model the template renders (no logic left for the template)."""
    state = result.state
    steps = result.plan["steps"]
    records = result.records
    sections = []
    for step in steps:
        record = records.get(step["id"])
        if record is None:
            continue
        details = _details(state, result.run_id, record)
        sections.append({"id": step["id"], "kind": step["kind"], "record": record, "details": details,
                         "details_json": json.dumps(details, indent=2, sort_keys=True) if details else "",
                         "outputs_json": json.dumps(record.get("outputs") or {}, indent=2, sort_keys=True),
                         "drift": _drift_charts(details) if step["kind"] == "monitor" else []})
    slowest = max([r.get("seconds", 0) or 0 for r in records.values()] + [1e-9])
    timings = [{"id": sid, "seconds": r.get("seconds", 0) or 0, "status": r.get("status", ""),
                "w": round((r.get("seconds", 0) or 0) / slowest * 300, 1)} for sid, r in records.items()]
    triggered = result.triggered
    return {"plan": result.plan.get("plan", "?"), "pipeline": result.plan.get("pipeline", ""),
            "run_id": result.run_id, "seconds": result.seconds, "ok": result.ok, "jobs": result.jobs,
            "dag": dag_svg(steps, result.statuses()), "timings": timings, "sections": sections,
            "notes": result.notes,
            "triggered": None if triggered is None else {
                "plan": triggered.plan.get("plan", "?"), "run_id": triggered.run_id,
                "href": f"../{triggered.run_id}/report.html"}}


def write_report(result: Any) -> Path:
    """Render ``runs/<run_id>/report.html`` for a finished plan run and return its path."""
    html = _environment().get_template("report.html.j2").render(**report_view(result))
    path = runs.run_dir(result.state, result.run_id) / "report.html"
    atomic_write_bytes(path, html.encode("utf-8"))
    return path
