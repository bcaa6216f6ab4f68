"""``loopc doctor [COMPILED]``: on a worker, check what the compiled jobs need; one clear line per problem.

Checks: the artifact store is writable and readable, the registry is reachable and migrated, and the
Python, JAX and loopc versions match the compiling side (recorded in the compiled folder's manifest).
Store and registry: ``--store``/``--registry``, else ``$LOOPC_STORE``/``$LOOPC_REGISTRY``, else the
compiled plan's, else the project's state folder — the same order the jobs use.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from loopc.compiler.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("compiled", nargs="?", default=".", help="compiled folder (loopc compile -o DIR) or a plan.json")
    parser.add_argument("--store", default=None, metavar="URI", help="artifact store to check")
    parser.add_argument("--registry", default=None, metavar="URL", help="registry to check")
    parser.add_argument("--root", default=None, help="project directory at run time (default: $LOOPC_ROOT or cwd)")


def _plans(path: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The plan.json documents under ``path`` and the compiled folder's manifest."""
    files = [path] if path.is_file() else sorted(path.glob("*/plan.json")) or sorted(path.glob("plan.json"))
    if not files:
        raise UsageError(f"{path}: no compiled plan here; give the folder `loopc compile -o DIR` wrote, or a plan.json")
    plans = []
    for file in files:
        try:
            plans.append(json.loads(file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise UsageError(f"{file}: cannot read the compiled plan ({error}); recompile it") from None
    manifest: dict[str, Any] = {}
    for folder in (files[0].parent, files[0].parent.parent):
        if (folder / ".loopc-manifest.json").is_file():
            manifest = json.loads((folder / ".loopc-manifest.json").read_text(encoding="utf-8"))
            break
    return plans, manifest


def _locations(args: argparse.Namespace, plan: dict[str, Any], root: Path) -> tuple[str, str]:
    state = root / str(plan.get("state_dir", ".loopc"))
    store = args.store or os.environ.get("LOOPC_STORE") or plan.get("store") or str(state)
    registry = (args.registry or os.environ.get("LOOPC_REGISTRY") or plan.get("registry")
                or f"sqlite:///{state / 'registry.db'}")
    return store, registry


def check_store(url: str, cache: Path) -> str | None:
    from loopc.runtime.store.artifacts import StoreError, open_store

    try:
        open_store(url, cache_dir=cache).probe()
    except StoreError as error:
        return str(error)
    return None


def check_registry(url: str) -> str | None:
    from loopc.runtime.registry.connect import open_registry
    from loopc.runtime.registry.interface import RegistryError, RegistryMissing

    try:
        with open_registry(url, read_only=True) as registry:
            current = registry.latest_schema()
            if registry.schema < current:
                return (f"registry {registry.label} has schema version {registry.schema}, this loopc uses "
                        f"{current}: run `loopc registry migrate --registry URL`")
    except RegistryMissing as error:
        if url.startswith("sqlite:"):
            return None  # a project's first run creates its SQLite registry
        return f"{error}"
    except RegistryError as error:
        return str(error)
    return None


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.cli.toolchain import mismatches, toolchain

    plans, manifest = _plans(Path(args.compiled))
    root = Path(args.root or os.environ.get("LOOPC_ROOT") or os.getcwd())
    problems: list[str] = []
    if "toolchain" not in manifest:
        problems.append("the compiled folder records no Python/JAX versions (compiled by an older loopc); recompile")
    else:
        problems += mismatches(manifest["toolchain"], toolchain())
    checked: set[tuple[str, str]] = set()
    for plan in plans:
        store, registry = _locations(args, plan, root)
        if (store, registry) in checked:
            continue
        checked.add((store, registry))
        found = [problem for problem in (check_store(store, root / str(plan.get("state_dir", ".loopc")) / "cache"),
                                         check_registry(registry)) if problem]
        problems += found
        if not found:
            print(f"ok: store {store} writable, registry {_label(registry)} reachable and migrated")
    for problem in problems:
        print(f"problem: {problem}")
    if not problems:
        print(f"ok: Python, JAX and loopc as compiled ({', '.join(f'{k} {v}' for k, v in sorted(toolchain().items()))})")
    return 1 if problems else 0


def _label(url: str) -> str:
    from loopc.runtime.registry.postgres import redacted

    return redacted(url)
