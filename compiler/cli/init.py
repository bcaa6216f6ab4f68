"""``loopc init DIR --example NAME [--no-data]``: copy an example project and generate its data;
``loopc init DIR --from-data FILE.parquet [--label COL]``: start a pipeline whose columns come from a table."""

from __future__ import annotations

import argparse
import subprocess
import sys
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from loopc.compiler.errors import LoopcError, UsageError
from loopc.compiler.spec.schema import SCHEMA_FILE, schema_text

_SKIP = {"__pycache__", ".loopc", "data"}
_EXAMPLE_SCHEMA = "$schema=../../schema/loopc.schema.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="where to create the project (must be empty or new)")
    parser.add_argument("--example", default="churn", metavar="NAME",
                        help=f"which example to copy (default: churn; one of: {', '.join(example_names())})")
    parser.add_argument("--no-data", action="store_true", help="do not run the example's data generator")
    parser.add_argument("--from-data", metavar="FILE", help="write a pipeline whose dataset columns are read from "
                        "this Parquet file's schema (instead of copying an example)")
    parser.add_argument("--label", metavar="COLUMN", help="with --from-data: the column to predict (default: the last)")


def examples_root() -> Traversable:
    """The examples shipped inside the package (works from a wheel)."""
    return resources.files("loopc.specs") / "examples"


def example_names() -> list[str]:
    """Names of the shipped examples: folders that hold a pipeline.yaml."""
    return sorted(p.name for p in examples_root().iterdir() if p.is_dir() and (p / "pipeline.yaml").is_file())


def run(args: argparse.Namespace) -> int:
    if args.from_data:
        from loopc.compiler.cli.init_data import init_from_data

        return init_from_data(_empty_target(Path(args.directory)), Path(args.from_data), args.label)
    names = example_names()
    if args.example not in names:
        raise UsageError(f"unknown example '{args.example}'; choose one of: {', '.join(names)}")
    target = _empty_target(Path(args.directory))
    _copy(examples_root() / args.example, target)
    _point_editors_at_schema(target)
    print(f"created {target} from example '{args.example}'")
    if not args.no_data:
        _generate_data(target)
    print(f"next: loopc validate {target}   then   loopc run {target / 'pipeline.yaml'}")
    return 0


def _empty_target(target: Path) -> Path:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} exists and is not an empty directory; choose a new or empty directory")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _copy(source: Traversable, target: Path) -> None:
    for item in sorted(source.iterdir(), key=lambda p: p.name):
        if item.name in _SKIP or item.name.endswith(".pyc"):
            continue
        if item.is_dir():
            (target / item.name).mkdir(exist_ok=True)
            _copy(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


def _point_editors_at_schema(target: Path) -> None:
    """The examples name ../../schema/; a new project gets its own copy of the schema beside the pipeline."""
    (target / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8", newline="\n")
    for pipeline in target.glob("*.yaml"):
        text = pipeline.read_text(encoding="utf-8")
        if _EXAMPLE_SCHEMA in text:
            pipeline.write_text(text.replace(_EXAMPLE_SCHEMA, f"$schema={SCHEMA_FILE}", 1), encoding="utf-8",
                                newline="\n")


def _generate_data(target: Path) -> None:
    script = target / "generate.py"
    if not script.is_file():
        print("this example has no data generator (generate.py); add data under data/ before running it")
        return
    result = subprocess.run([sys.executable, str(script), "--root", str(target)], capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        raise LoopcError(f"the example's data generator failed: {detail[0]}; rerun it with "
                         f"'{Path(sys.executable).name} {script} --root {target}'")
    print(f"wrote example data under {target / 'data'}")
