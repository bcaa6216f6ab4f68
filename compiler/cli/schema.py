"""``loopc schema [--output DIR]``: write the JSON Schema of the spec language."""

from __future__ import annotations

import argparse
from pathlib import Path

from loopc.compiler.errors import UsageError
from loopc.compiler.spec.schema import SCHEMA_FILE, schema_text
from loopc.runtime.store.artifacts import atomic_write_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", default="specs/schema", metavar="DIR",
                        help=f"directory to write {SCHEMA_FILE} into (default: specs/schema); '-' prints it")


def run(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.output == "-":
        print(text, end="")
        return 0
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output {folder} is a file; give a directory")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SCHEMA_FILE
    atomic_write_bytes(target, text.encode("utf-8"), mode=0o644)
    print(f"wrote {target}")
    return 0
