"""``loopc inventory``: every pipeline and model in a spec tree, who owns it, what it reads, its status."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from loopc.compiler.errors import LoopcError

COLUMNS = ("pipeline", "model", "owner", "risk class", "datasets", "targets", "status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a pipeline file or a directory searched for specs")
    parser.add_argument("--format", "-f", choices=("text", "json", "markdown"), default="text", help="output format")


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.api import load_project

    seen: dict[str, dict[str, Any]] = {}
    for item in load_project(args.path):
        seen.setdefault(item.spec.pipeline.name, entry(item.spec, item.display or str(item.file), Path(item.root)))
    entries = [seen[name] for name in sorted(seen)]
    if args.format == "json":
        print(json.dumps(entries, indent=2, sort_keys=True))
    elif args.format == "markdown":
        print(markdown(entries), end="")
    else:
        print_table(entries)
    return 0


def entry(spec: Any, file: str, root: Path) -> dict[str, Any]:
    """One inventory row as plain data (the JSON format)."""
    pipeline, model = spec.pipeline, spec.model
    return {
        "pipeline": pipeline.name, "file": file, "model": model.name, "task": model.task,
        "owner": pipeline.owner, "risk_class": pipeline.risk_class, "intended_use": pipeline.intended_use,
        "schedule": pipeline.schedule, "targets": list(pipeline.targets),
        "datasets": [{"name": name, "source": spec.datasets[name].source.path} for name in [model.dataset]]
        + [{"name": n, "source": d.source.path} for n, d in sorted(spec.datasets.items()) if n != model.dataset],
        "monitors": sorted(spec.monitors),
        "status": registry_status(root / pipeline.state_dir / "registry.db", model.name, "champion"),
    }


def registry_status(path: Path, model: str, alias: str) -> dict[str, Any]:
    """Champion, version count and last promotion of ``model`` from the registry at ``path``, if any."""
    if not path.exists():
        return {"registry": False}
    try:
        from loopc.runtime.registry.connect import open_registry
        from loopc.runtime.registry.interface import RegistryError
    except ImportError:  # runtime without a registry: report the spec side only
        return {"registry": False}
    try:
        registry = open_registry(str(path), read_only=True)
        try:
            champion = registry.get_alias(model, alias)
            versions = registry.versions(model)
            moves = [e for e in registry.audit_log(model) if e.alias == alias and e.version is not None]
        finally:
            registry.close()
    except RegistryError as exc:
        raise LoopcError(f"cannot read the registry: {exc}") from None
    last = moves[-1] if moves else None
    return {
        "registry": True, "alias": alias, "versions": len(versions),
        "champion": champion.version if champion else None,
        "last_promotion": {"version": last.version, "at": last.at, "actor": last.actor, "action": last.action,
                           "reason": last.reason} if last else None,
    }


def status_text(status: dict[str, Any]) -> str:
    """``champion v3 (promoted 2026-11-26T05:00:00Z by ci)``, ``no registry``, ``2 versions, no champion``."""
    if not status.get("registry"):
        return "no registry"
    if status["champion"] is None:
        return f"{status['versions']} versions, no {status['alias']}"
    text = f"{status['alias']} v{status['champion']} of {status['versions']}"
    last = status.get("last_promotion")
    return f"{text} (promoted {last['at']} by {last['actor']})" if last else text


def cells(row: dict[str, Any]) -> list[str]:
    datasets = ", ".join(f"{d['name']} ({d['source']})" for d in row["datasets"])
    return [row["pipeline"], row["model"], row["owner"] or "-", row["risk_class"],
            datasets, ", ".join(row["targets"]), status_text(row["status"])]


def markdown(entries: list[dict[str, Any]]) -> str:
    """A GitHub-flavoured Markdown table (pipes and newlines in values escaped)."""
    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(escape(c) for c in cells(row)) + " |" for row in entries]
    return "\n".join(lines) + "\n"


def print_table(entries: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"{len(entries)} pipeline{'s' if len(entries) != 1 else ''}", title_justify="left")
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for row in entries:
        table.add_row(*(Text(cell) for cell in cells(row)))
    console = Console()
    (console if console.is_terminal else Console(width=200)).print(table)
