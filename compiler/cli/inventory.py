"""``loopc inventory``: every model in a spec tree for governance: who owns it, what it is for, what it reads,
how it is gated and scheduled, and (where a registry exists) its champion and open monitor breaches.

Exit codes: 0 listed, 1 spec errors, an unreadable registry or a ``--fail-on`` policy broken (one line per
violation on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from loopc.compiler.cli.inventory_policies import POLICIES, parse_policies, violations
from loopc.compiler.cli.inventory_render import to_markdown, to_text
from loopc.compiler.cli.inventory_rows import FORMAT, RegistryReader, registry_url, spec_row
from loopc.runtime.registry.connect import REGISTRY_ENV


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a pipeline file or a directory searched for specs")
    parser.add_argument("--format", "-f", choices=("text", "json", "markdown"), default="text", help="output format")
    parser.add_argument("--registry", metavar="URL", help="registry to read champions from (default: $LOOPC_REGISTRY, "
                        "else each spec's pipeline.registry, else registry.db in its state folder)")
    parser.add_argument("--no-registry", action="store_true", help="report the specs only; open no registry")
    parser.add_argument("--fail-on", action="append", default=[], metavar="POLICY",
                        help=f"exit 1 naming each model that breaks POLICY (comma-separated, repeatable): "
                             f"all, {', '.join(POLICIES)}")


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.api import load_project

    policies = parse_policies(args.fail_on)
    rows = inventory(load_project(args.path), None if args.no_registry else args.registry or os.environ.get(REGISTRY_ENV),
                     not args.no_registry)
    if args.format == "json":
        print(json.dumps({"format": FORMAT, "models": rows}, indent=2, sort_keys=True))
    else:
        sys.stdout.write(to_markdown(rows) if args.format == "markdown" else to_text(rows))
    broken = violations(rows, policies)
    for line in broken:
        print(f"policy violation: {line}", file=sys.stderr)
    return 1 if broken else 0


def inventory(loaded: list[Any], registry: str | None, read_registry: bool = True) -> list[dict[str, Any]]:
    """One row per pipeline (the first sweep point's spec), sorted by pipeline name."""
    first: dict[str, Any] = {}
    for item in loaded:
        first.setdefault(item.spec.pipeline.name, item)
    reader = RegistryReader()
    try:
        return [_row(first[name], registry, reader if read_registry else None) for name in sorted(first)]
    finally:
        reader.close()


def _row(item: Any, registry: str | None, reader: RegistryReader | None) -> dict[str, Any]:
    row = spec_row(item.spec, item.display or str(item.file))
    url = registry_url(item.spec, Path(item.root), registry)
    row["registry"] = reader.status(url, item.spec.model.name) if reader is not None else None
    return row
