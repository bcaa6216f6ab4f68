"""Shared by ``loopc predict`` and ``loopc export``: where the registry is, and MODEL[@ALIAS|VERSION]."""

from __future__ import annotations

import argparse
from pathlib import Path

from loopc.compiler.errors import LoopcError


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL[@ALIAS|VERSION]",
                        help="a registered model: its champion, an alias (churn@challenger) or a version (churn@3)")
    parser.add_argument("--registry", default=None, metavar="URL",
                        help="registry URL; default $LOOPC_REGISTRY, else registry.db in the state folder")
    parser.add_argument("--root", default=None, help="project directory (default: the spec's, else the cwd)")
    parser.add_argument("--spec", default=None, help="pipeline file whose state_dir holds the registry")
    parser.add_argument("--state-dir", default=".loopc", help="state folder under the root (default .loopc)")


def resolve_version(args: argparse.Namespace):
    """(state folder, ModelVersion) that ``args.model`` names now; LoopcError for a bad name or registry."""
    from loopc.compiler.cli.registry import registry_url, state_dir
    from loopc.runtime.registry.connect import open_registry
    from loopc.runtime.registry.interface import RegistryError
    from loopc.runtime.score.resolve import ScoreError, parse_ref, resolve

    state = Path(state_dir(args))
    try:
        ref = parse_ref(args.model)
        with open_registry(registry_url(args), read_only=True) as registry:
            return state, resolve(registry, ref)
    except (ScoreError, RegistryError) as exc:
        raise LoopcError(str(exc)) from None
