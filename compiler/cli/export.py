"""``loopc export MODEL[@ALIAS|VERSION] DIR``: a self-contained bundle a service scores with JAX alone."""

from __future__ import annotations

import argparse
from pathlib import Path

from loopc.compiler.cli.modelref import add_registry_arguments, resolve_version
from loopc.compiler.errors import LoopcError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_registry_arguments(parser)
    parser.add_argument("directory", metavar="DIR", help="new (or empty) folder for the bundle")


def run(args: argparse.Namespace) -> int:
    from loopc.runtime.export.bundle import ExportError, write_bundle
    from loopc.runtime.score.resolve import version_card
    from loopc.runtime.steps.common import loopc_version
    from loopc.runtime.store.artifacts import local_artifact

    state, version = resolve_version(args)
    try:
        out = write_bundle(local_artifact(state, version.artifact), Path(args.directory), version=version.version,
                           card=version_card(state, version), loopc_version=loopc_version())
    except (ExportError, OSError) as exc:
        raise LoopcError(f"cannot export {version.model} v{version.version}: {exc}") from None
    print(f"exported {version.model} v{version.version} to {out} (load it with {out / 'score.py'})")
    return 0
