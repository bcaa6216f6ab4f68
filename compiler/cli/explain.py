"""``loopc explain``: which steps would run or come from the cache, and which input changed."""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loopc.compiler.plan.fingerprint import outcome_view
from loopc.compiler.plan.pipeline import Plan, Step

_SHOWN_PATHS = 4
_ALWAYS_RUNS = {
    "gate": "decisions are never cached: the champion it compares with may have changed",
    "register": "registers the candidate of this run (the registry returns an existing version if unchanged)",
    "shadow": "scores against the current champion, which may have changed",
    "promote": "promotion depends on this run's gate, shadow and approval",
    "monitor": "reads the latest live rows every time",
    "score": "scores the latest rows with the version the alias names when it runs",
}


@dataclass(frozen=True)
class Verdict:
    """What a run would do with one step: ``run``, ``cached`` or ``check`` (validate), and why."""

    step: str
    would: str
    why: str


@dataclass(frozen=True)
class History:
    """What is known about a plan from earlier: its last compiled step documents and run records."""

    compiled: dict[str, dict[str, Any]]  # step id -> step document
    runs: dict[str, dict[str, Any]]  # step id -> latest run record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pipeline file or directory of specs")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: key=value, group=option, a=1,2")
    parser.add_argument("--root", default=None,
                        help="project directory holding the state dir (default: $LOOPC_ROOT, else the spec's folder)")
    parser.add_argument("--format", "-f", choices=("table", "json"), default="table", help="output format")


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.api import load_project
    from loopc.compiler.plan.project import plan_project

    loaded = load_project(args.spec, args.overrides)
    roots = {item.spec.pipeline.name: Path(args.root or os.environ.get("LOOPC_ROOT") or item.root) for item in loaded}
    report = []
    for plan in plan_project(loaded):
        state = roots[plan.pipeline] / plan.state_dir
        report.append((plan, explain_plan(plan, read_history(state, plan))))
    if args.format == "json":
        print(json.dumps({plan.name: [asdict(v) for v in verdicts] for plan, verdicts in report}, indent=2))
    else:
        print_report(report)
    return 0


def explain_plan(plan: Plan, history: History) -> list[Verdict]:
    """A verdict per step, in plan order: fingerprints against the last run, else the last compile."""
    changed: set[str] = set()  # fingerprint differs: its cache key certainly changes
    running: set[str] = set()  # would execute (changed or not cached)
    data_bound: set[str] = set()  # downstream of a validate step: cached only if the data is unchanged
    verdicts = []
    for step in plan.steps:
        verdict = _verdict(step, history, changed, running, data_bound)
        if step.kind == "validate" or data_bound.intersection(step.deps):
            data_bound.add(step.id)
        if verdict.would == "run":
            running.add(step.id)
        verdicts.append(verdict)
    return verdicts


def _verdict(step: Step, history: History, changed: set[str], running: set[str], data_bound: set[str]) -> Verdict:
    record, previous = history.runs.get(step.id), history.compiled.get(step.id)
    reference = (record or {}).get("fingerprint") or (previous or {}).get("fingerprint")
    if reference is None:
        changed.add(step.id)
        return Verdict(step.id, "run", "new step (never compiled or run here)")
    if reference != step.fingerprint:
        changed.add(step.id)
        return Verdict(step.id, "run", _why_changed(step, previous, reference, changed))
    status = (record or {}).get("status")
    if status in ("failed", "skipped"):
        return Verdict(step.id, "run", f"{status} in the last run" + _message(record))
    upstream = [dep for dep in step.deps if dep in running]
    if not step.cacheable:
        return Verdict(step.id, "run", _ALWAYS_RUNS.get(step.kind, "not cacheable"))
    if upstream:
        return Verdict(step.id, "run", "upstream will re-run: " + ", ".join(upstream))
    if record is None:
        return Verdict(step.id, "run", "compiled but never run")
    if step.kind == "validate":
        return Verdict(step.id, "check", "data may have changed (validate always re-fingerprints the data)")
    suffix = " if the data is unchanged" if data_bound.intersection(step.deps) else ""
    return Verdict(step.id, "cached", f"unchanged since run {record.get('run_id', '?')}{suffix}")


def _why_changed(step: Step, previous: dict[str, Any] | None, reference: str, changed: set[str]) -> str:
    if previous is not None and previous.get("fingerprint") == reference:
        paths = changed_paths(outcome_view(previous.get("config", {})), outcome_view(step.config))
        if paths:
            shown = ", ".join(paths[:_SHOWN_PATHS])
            more = f" and {len(paths) - _SHOWN_PATHS} more" if len(paths) > _SHOWN_PATHS else ""
            return f"config changed: {shown}{more}"
    upstream = [dep for dep in step.deps if dep in changed]
    if upstream:
        return "upstream changed: " + ", ".join(upstream)
    if previous is not None and previous.get("fingerprint") == reference:
        return "step format changed (a different loopc version compiled it)"
    return "changed since the last run"


def _message(record: dict[str, Any] | None) -> str:
    message = str((record or {}).get("message") or "").strip().splitlines()
    return f" ({message[0][:80]})" if message else ""


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths (``gate.thresholds[0].min``) where ``new`` differs from ``old``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            out.extend([path] if key not in old or key not in new else changed_paths(old[key], new[key], path))
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [p for i, (a, b) in enumerate(zip(old, new)) for p in changed_paths(a, b, f"{prefix}[{i}]")]
    return [] if old == new else [prefix or "<config>"]


def read_history(state: Path, plan: Plan) -> History:
    """The plan `loopc run` compiled last (else ``state/compiled/<plan>/``) and the latest run record of each step."""
    from loopc.compiler.cli.run import latest_compiled

    compiled: dict[str, dict[str, Any]] = {}
    folder = (latest_compiled(state, plan.pipeline) or state / "compiled") / plan.name
    manifest = _read_json(folder / "plan.json") or {}
    for entry in manifest.get("steps", []) if isinstance(manifest.get("steps"), list) else []:
        document = _read_json(folder / str(entry.get("file", f"steps/{entry.get('id')}.json")))
        if isinstance(document, dict) and "id" in document:
            compiled[document["id"]] = document
    return History(compiled, _latest_records(state / "runs", plan))


def _latest_records(runs: Path, plan: Plan) -> dict[str, dict[str, Any]]:
    latest: dict[str, tuple[tuple[str, float], dict[str, Any]]] = {}
    ids = {step.id for step in plan.steps}
    for path in runs.glob("*/*.json") if runs.is_dir() else []:
        if path.stem not in ids:
            continue
        record = _read_json(path)
        if not isinstance(record, dict) or record.get("plan", plan.name) != plan.name:
            continue
        order = (str(record.get("started_at", "")), path.stat().st_mtime)
        if path.stem not in latest or order > latest[path.stem][0]:
            latest[path.stem] = (order, record)
    return {step_id: record for step_id, (_, record) in latest.items()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def print_report(report: list[tuple[Plan, list[Verdict]]]) -> None:
    """One rich table per plan: step | would | why."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    console = console if console.is_terminal else Console(width=200)  # pipes and files: no wrapping
    colors = {"run": "yellow", "cached": "green", "check": "cyan"}
    for plan, verdicts in report:
        runs = sum(v.would == "run" for v in verdicts)
        table = Table(title=f"{plan.name} ({plan.kind} plan): {runs} of {len(verdicts)} steps would run",
                      title_justify="left")
        for column in ("step", "would", "why"):
            table.add_column(column, no_wrap=column != "why")
        for verdict in verdicts:
            table.add_row(Text(verdict.step), Text(verdict.would, style=colors[verdict.would]), Text(verdict.why))
        console.print(table)
