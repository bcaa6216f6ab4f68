"""``loopc schema [--output DIR]``: write the JSON Schema of the spec language."""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from loopc.compiler.errors import UsageError
from loopc.compiler.schema import SCHEMA_FILE, schema_text


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
    _atomic_write(target, text)
    print(f"wrote {target}")
    return 0


def _atomic_write(target: Path, text: str) -> None:
    handle, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
