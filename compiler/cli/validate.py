"""``loopc validate PATH... [KEY=VALUE...] [--format text|json|github]``: report every spec error."""

from __future__ import annotations

import argparse
import json
import sys

from loopc.compiler.api import validate_project
from loopc.compiler.errors import SpecError, SpecErrors, UsageError
from loopc.compiler.spec.cache import ValidateCache, default_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("targets", nargs="+", metavar="PATH_OR_OVERRIDE",
                        help="pipeline files or directories; arguments with '=' (or starting with '~' or '+') are overrides")
    parser.add_argument("--format", choices=("text", "json", "github"), default="text",
                        help="text (default), json (a list of errors) or github (workflow annotations)")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="worker processes for large trees (default 1; 0: one per 128 pipelines, up to the CPUs)")
    parser.add_argument("--cache", action="store_true",
                        help="reuse results for pipelines whose files did not change ($LOOPC_CACHE_DIR, else ~/.cache/loopc)")


def split_targets(targets: list[str]) -> tuple[list[str], list[str]]:
    """Paths and overrides: an argument containing '=' or starting with '~' or '+' is an override."""
    overrides = [t for t in targets if "=" in t or t.startswith(("~", "+"))]
    paths = [t for t in targets if t not in overrides]
    if not paths:
        raise UsageError("give at least one pipeline file or directory")
    return paths, overrides


def run(args: argparse.Namespace) -> int:
    paths, overrides = split_targets(args.targets)
    errors: list[SpecError] = []
    built: list = []
    count = 0
    cache = ValidateCache(default_dir()) if args.cache else None
    for path in paths:
        try:
            count += validate_project(path, overrides, jobs=args.jobs or None, cache=cache, built=built)
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e not in errors)
    errors.sort()
    _report(errors, _warnings(built), count, args.format)
    return 1 if errors else 0


def _warnings(built: list) -> list[SpecError]:
    """The located warnings of the specs validated (a spec with warnings is never served by the cache)."""
    if not built:
        return []
    from loopc.compiler.spec.spec_warnings import located_warnings

    found = {w for item in built for w in located_warnings(item.spec, item.positions, (item.display, 1, 1))}
    return sorted(found)


def _report(errors: list[SpecError], warnings: list[SpecError], count: int, fmt: str) -> None:
    out = sys.stdout
    if fmt == "json":
        found = [_as_dict(e) for e in errors] + [_as_dict(w, "warning") for w in warnings]
        out.write(json.dumps(found, indent=2) + "\n")
        return
    for error in errors:
        out.write((_annotation(error) if fmt == "github" else error.render()) + "\n")
    for warning in warnings:
        out.write((_annotation(warning, "warning") if fmt == "github" else f"warning: {warning.render()}") + "\n")
    noted = f", {_plural(len(warnings), 'warning')}" if warnings else ""
    if errors:
        files = len({e.file for e in errors})
        out.write(f"{_plural(len(errors), 'error')} in {_plural(files, 'file')}{noted}\n")
    else:
        out.write(f"{_plural(count, 'spec')} valid{noted}\n")


def _as_dict(error: SpecError, severity: str = "error") -> dict:
    return {"file": error.file, "line": error.line, "column": error.column, "code": error.code,
            "path": error.spec_path, "message": error.message, "hint": error.hint, "severity": severity}


def _annotation(error: SpecError, level: str = "error") -> str:
    """A GitHub Actions workflow command; properties and message escaped as the runner expects."""
    message = f"{error.spec_path or '<root>'}: {error.message}" + (f" ({error.hint})" if error.hint else "")
    file = _escape(error.file, True)
    return f"::{level} file={file},line={error.line},col={error.column},title={error.code}::{_escape(message, False)}"


def _escape(text: str, is_property: bool) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if is_property else text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"
