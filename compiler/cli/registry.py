"""``loopc registry list|show|verify|migrate|promote|rollback``: read, check and steer the model registry."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path
from typing import Any

from loopc.compiler.errors import LoopcError, UsageError

SHOWN_METRICS = ("auc", "accuracy", "log_loss", "macro_f1", "rmse", "mae", "r2")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", parser_class=type(parser))
    listing = sub.add_parser("list", help="every version of every model, with aliases and key metrics")
    listing.add_argument("model", nargs="?", help="only this model")
    show = sub.add_parser("show", help="one version: lineage, metrics, gate decision, model card")
    show.add_argument("model")
    show.add_argument("number", type=int, metavar="VERSION")
    verify = sub.add_parser("verify", help="check the audit hash chain, the protective triggers and the aliases")
    migrate = sub.add_parser("migrate", help="create the registry's tables or bring them to this loopc's schema")
    promote = sub.add_parser("promote", help="make a version champion by hand (audited manual override)")
    promote.add_argument("model")
    promote.add_argument("number", type=int, metavar="VERSION")
    rollback = sub.add_parser("rollback", help="make the previous champion champion again (audited)")
    rollback.add_argument("model")
    for command in (promote, rollback):
        command.add_argument("--reason", required=True, help="why (recorded in the audit log)")
        command.add_argument("--actor", default=None, help="who (default: the current user)")
    for command in (listing, show, verify, migrate, promote, rollback):
        command.add_argument("--registry", default=None, metavar="URL",
                             help="registry URL (postgresql://..., sqlite:///...); default $LOOPC_REGISTRY, "
                                  "else registry.db in the state folder")
        command.add_argument("--root", default=None, help="project directory (default: the spec's, else the cwd)")
        command.add_argument("--spec", default=None, help="pipeline file whose state_dir holds the registry")
        command.add_argument("--state-dir", default=".loopc", help="state folder under the root (default .loopc)")


def state_dir(args: argparse.Namespace) -> Path:
    """The state folder: from ``--spec`` (its directory and pipeline.state_dir), else ``--root``."""
    if args.spec:
        from loopc.compiler.api import load_project

        loaded = load_project(args.spec)
        if len(loaded) != 1:
            raise UsageError(f"'{args.spec}' holds {len(loaded)} pipelines; name one pipeline file")
        return loaded[0].root / loaded[0].spec.pipeline.state_dir
    return Path(args.root or os.getcwd()) / args.state_dir


READ_ONLY = frozenset({"list", "show", "verify"})


def registry_url(args: argparse.Namespace) -> str:
    """``--registry``, else ``$LOOPC_REGISTRY``, else the SQLite file in the state folder."""
    url = args.registry or os.environ.get("LOOPC_REGISTRY", "")
    return url or f"sqlite:///{state_dir(args) / 'registry.db'}"


def open_registry(args: argparse.Namespace):
    """The project's registry: read-only for list/show/verify; created only by ``migrate`` (else the loop does)."""
    from loopc.runtime.registry.connect import open_registry

    return open_registry(registry_url(args), read_only=args.action in READ_ONLY, create=args.action == "migrate")


def _metrics_text(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in SHOWN_METRICS if isinstance(metrics.get(k), (int, float)))


def _known_model(registry, model: str) -> str:
    """``model``, or an error naming the registry's models when it has no version of it."""
    known = registry.models()
    if model not in known:
        raise LoopcError(f"unknown model '{model}' in registry {registry.label}; "
                         f"known models: {', '.join(known) or 'none'}")
    return model


def _list(registry, args: argparse.Namespace, console) -> int:
    from rich.table import Table

    models = [_known_model(registry, args.model)] if args.model else registry.models()
    if not models:
        console.print("no models registered yet")
    for model in models:
        aliases: dict[int, list[str]] = {}
        for alias, number in registry.aliases(model).items():
            aliases.setdefault(number, []).append(alias)
        table = Table(title=model, title_justify="left")
        for column in ("version", "status", "aliases", "registered", "metrics", "data"):
            table.add_column(column)
        for v in registry.versions(model):
            data = ", ".join(f"{k}:{fp[:10]}" for k, fp in sorted(v.dataset_fingerprints.items()))
            table.add_row(str(v.version), v.status, ", ".join(sorted(aliases.get(v.version, []))),
                          v.created_at[:19], _metrics_text(v.metrics), data)
        console.print(table)
    return 0


def _show(registry, args: argparse.Namespace, console) -> int:
    from loopc.runtime.registry.modelcard import card_path

    version = registry.version(args.model, args.number)
    print(json.dumps(version.to_dict(), indent=2, sort_keys=True, default=str))  # stdout: only the JSON
    card = card_path(state_dir(args), args.model, args.number)
    if card.is_file():
        print(f"model card: {card}", file=sys.stderr)
    return 0


def _verify(registry, args: argparse.Namespace, console) -> int:
    problems = registry.verify()
    for problem in problems:
        print(f"{registry.label}: {problem}")
    if not problems:
        entries = registry.audit_log()
        print(f"{registry.label}: ok ({len(entries)} audit entries chained, triggers present, aliases consistent)")
    return 1 if problems else 0


def _migrate(registry, args: argparse.Namespace, console) -> int:
    registry.migrate()
    before, now = registry.schema_on_open, registry.schema
    change = "created" if before == 0 else ("already current" if before == now else f"migrated from version {before}")
    print(f"{registry.label}: schema version {now} ({change})")
    return 0


def _actor(args: argparse.Namespace) -> str:
    if args.actor:
        return args.actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _promote(registry, args: argparse.Namespace, console) -> int:
    from loopc.runtime.registry.interface import CHAMPION, NO_VERSION, Event

    if not args.reason.strip():
        raise UsageError("--reason must say why this version is promoted by hand")
    version = registry.version(args.model, args.number)
    current = registry.get_alias(args.model, CHAMPION)
    if current is not None and current.version == version.version:
        console.print(f"{args.model} version {version.version} is already champion")
        return 0
    actor = _actor(args)
    event = Event("manual_promotion", args.reason,
                  {"status_before": version.status, "champion_before": current.version if current else None})
    registry.promote(args.model, version.version, actor=actor, reason=f"manual override: {args.reason}",
                     expect_current=current.version if current else NO_VERSION, event=event)
    was = f" (was {current.version})" if current else ""
    console.print(f"{args.model} version {version.version} is now champion{was}; audited as {actor}")
    return 0


def _rollback(registry, args: argparse.Namespace, console) -> int:
    version = registry.rollback(_known_model(registry, args.model), actor=_actor(args), reason=args.reason)
    console.print(f"{args.model} rolled back: version {version.version} is champion again")
    return 0


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loopc.runtime.registry.interface import RegistryError

    actions = {"list": _list, "show": _show, "verify": _verify, "migrate": _migrate, "promote": _promote,
               "rollback": _rollback}
    if not getattr(args, "action", None):
        raise UsageError("loopc registry: choose an action: list, show, verify, migrate, promote or rollback")
    try:
        registry = open_registry(args)
    except RegistryError as exc:
        raise LoopcError(str(exc)) from None
    try:
        return actions[args.action](registry, args, Console())
    except RegistryError as exc:
        text = str(exc)
        raise LoopcError(text if registry.label in text else f"registry {registry.label}: {text}") from None
    finally:
        registry.close()
