"""``loopc compile``: spec -> plans -> files for one target, written atomically under -o DIR."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import secrets
import shutil
import stat
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from loopc.compiler.errors import LoopcError, UsageError
from loopc.compiler.spec.collector import collector_paused
from loopc.runtime.store.artifacts import atomic_write_bytes

if TYPE_CHECKING:  # the CLI imports every command to build its parser: keep planning out of that
    from loopc.compiler.plan.pipeline import Plan
    from loopc.compiler.targets import EmitOptions

MANIFEST = ".loopc-manifest.json"


@dataclass(frozen=True)
class WriteResult:
    """What a compile changed on disk (paths relative to the output folder)."""

    files: tuple[str, ...]  # every file of this compile
    changed: tuple[str, ...]  # those whose bytes or mode changed
    removed: tuple[str, ...]  # stale files of the previous compile


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pipeline file or directory of specs")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: key=value, group=option, a=1,2")
    parser.add_argument("--target", "-t", default="local", help="local, airflow or slurm (default: local)")
    parser.add_argument("--output", "-o", default=None, help="output folder (default: build/<target>)")
    parser.add_argument("--python", default="python3", help="interpreter the emitted jobs call")
    parser.add_argument("--root", default=None, help="project directory at run time (default: $LOOPC_ROOT or cwd)")
    parser.add_argument("--store", default=None, metavar="URI",
                        help="artifact store every job uses (s3://bucket/prefix, ...; overrides pipeline.store)")
    parser.add_argument("--registry", default=None, metavar="URL",
                        help="model registry every job uses (postgresql://user@host/db; overrides pipeline.registry)")


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.api import load_project
    from loopc.compiler.plan.project import plan_project
    from loopc.compiler.targets import EmitOptions

    backend_named(args.target)
    loaded = load_project(args.spec, args.overrides)
    for item in loaded:
        if args.target not in item.spec.pipeline.targets:
            print(f"warning: pipeline '{item.spec.pipeline.name}' does not list '{args.target}' in "
                  f"pipeline.targets ({', '.join(item.spec.pipeline.targets)})", file=sys.stderr)
    plans = with_locations(plan_project(loaded), args.store, args.registry)
    out_dir = Path(args.output or f"build/{args.target}")
    result = compile_plans(plans, args.target, out_dir, EmitOptions(python=args.python, root=args.root))
    names = ", ".join(plan.name for plan in plans)
    print(f"compiled {names} for {args.target}: {len(result.files)} files in {out_dir} "
          f"({len(result.changed)} changed, {len(result.removed)} stale removed)")
    return 0


def with_locations(plans: list[Plan], store: str | None, registry: str | None) -> list[Plan]:
    """``plans`` with the store and registry of ``--store``/``--registry`` (checked like the spec's fields)."""
    import dataclasses

    from loopc.compiler.spec.locations import REGISTRY_SCHEMES, STORE_SCHEMES, location_problem

    for flag, value, schemes in (("--store", store, STORE_SCHEMES), ("--registry", registry, REGISTRY_SCHEMES)):
        problem = None if value is None else location_problem(value, schemes)
        if problem:
            raise UsageError(f"{flag}: {problem}")
    chosen = {name: value for name, value in (("store", store), ("registry", registry)) if value is not None}
    return [dataclasses.replace(plan, **chosen) for plan in plans]


def backend_named(target: str):
    """The backend called ``target``; UsageError listing the valid names otherwise."""
    from loopc.compiler.targets import backends

    known = backends()
    if target not in known:
        raise UsageError(f"unknown target '{target}'; valid targets: {', '.join(sorted(known))}")
    return known[target]


def compile_plans(plans: list[Plan], target: str, out_dir: Path, options: EmitOptions) -> WriteResult:
    """Check and render ``plans`` with ``target``'s backend and write the files under ``out_dir``."""
    return write_compiled(out_dir, render_plans(plans, target, options), target)


def render_plans(plans: list[Plan], target: str, options: EmitOptions) -> dict[str, str]:
    """Check and render ``plans`` with ``target``'s backend: ``{relative path: text}``."""
    backend = backend_named(target)
    problems = backend.check(plans, options)
    if problems:
        raise LoopcError(f"target '{target}' cannot run these plans:\n" + "\n".join(f"  - {p}" for p in problems))
    return backend.render(plans, options)


def write_compiled(out_dir: Path, files: dict[str, str], target: str) -> WriteResult:
    """:func:`write_files`, with a write error turned into a LoopcError that says what to do."""
    try:
        return write_files(out_dir, files, target)
    except OSError as exc:
        raise LoopcError(f"{exc.filename or out_dir}: cannot write the compiled files ({exc.strerror or exc}); "
                         "choose another output folder with -o") from None


def write_files(out_dir: Path, files: dict[str, str], target: str) -> WriteResult:
    """Write ``files`` atomically under ``out_dir``; remove what the previous compile wrote and this one did not.

    Only files listed in the folder's manifest (written by loopc) are ever removed. The cyclic collector is paused
    meanwhile: a collection here would scan every object the loaded specs and plans hold, for nothing.
    """
    with collector_paused():
        return _write_files(out_dir, files, target)


def _write_files(out_dir: Path, files: dict[str, str], target: str) -> WriteResult:
    for relative in files:
        _check_relative(relative)
    if not os.path.lexists(out_dir) and _write_new(out_dir, files, target):
        return WriteResult(tuple(sorted(files)), tuple(sorted(files)), ())
    previous = _read_manifest(out_dir)
    written, folders, chmod = [], set(), _chmod_needed()
    for relative, text in sorted(files.items()):
        if _write_if_changed(out_dir / relative, text, folders, chmod):
            written.append(relative)
    stale = sorted(set(previous) - set(files))
    for relative in stale:
        _remove(out_dir, relative)
    atomic_write_bytes(out_dir / MANIFEST, _manifest(files, target), mode=0o644, durable=False)
    return WriteResult(tuple(sorted(files)), tuple(written), tuple(stale))


def _write_new(out_dir: Path, files: dict[str, str], target: str) -> bool:
    """A first compile: every file created in a new folder beside ``out_dir``, renamed to ``out_dir`` whole, so
    readers see no folder or the complete one (and no file needs a temporary copy of its own).

    False, having written nothing, when ``out_dir`` appeared meanwhile.
    """
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = str(out_dir.parent / f".{out_dir.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    os.mkdir(staging)
    try:
        folders, chmod = {staging}, _chmod_needed()
        for relative, text in sorted(files.items()):
            _create_file(os.path.join(staging, relative), text.encode("utf-8"), _mode(relative), folders, chmod)
        _create_file(os.path.join(staging, MANIFEST), _manifest(files, target), 0o644, folders, chmod)
        os.rename(staging, out_dir)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.isdir(out_dir):
            return False
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return True


def _manifest(files: dict[str, str], target: str) -> bytes:
    from loopc.compiler.cli.toolchain import toolchain

    manifest = {"format": 1, "target": target, "files": sorted(files), "toolchain": toolchain()}
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _mode(relative: str) -> int:
    return 0o755 if os.path.splitext(relative)[1] == ".sh" else 0o644


def _chmod_needed() -> frozenset[int]:
    """The modes (of 0o644 and 0o755) that the umask would narrow: only files created with those need ``fchmod``."""
    mask = _umask()
    return frozenset(mode for mode in (0o644, 0o755) if mode & ~mask != mode)


def _umask() -> int:
    """The process's umask: read from /proc/self/status where Linux shows it (setting it to read it back, as
    ``os.umask`` must elsewhere, would briefly change it for every thread)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _create_file(path: str, data: bytes, mode: int, folders: set[str], chmod: frozenset[int]) -> None:
    """A new file at ``path`` (its folder created once: ``folders`` remembers them) holding ``data``, with ``mode``
    (set again on the open file when it is in ``chmod``, the modes the umask narrows)."""
    folder = os.path.dirname(path)
    if folder not in folders:
        os.makedirs(folder, exist_ok=True)
        folders.add(folder)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        _write_all(fd, data)
        if mode in chmod:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    """``data`` written to the open file ``fd``."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


_PLAIN_RELATIVE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
"""Names every backend gives (``loopc_churn/steps/train.churn.json``): relative, no '..', '.' or empty part."""


def _check_relative(relative: str) -> None:
    if _PLAIN_RELATIVE.fullmatch(relative):
        return
    path = PurePosixPath(relative)
    if path.is_absolute() or ".." in path.parts or not path.parts or relative == MANIFEST:
        raise LoopcError(f"a backend produced the file name '{relative}', which is not a relative path "
                         "inside the output folder (a bug in loopc)")


def _read_manifest(out_dir: Path) -> list[str]:
    try:
        data = json.loads((out_dir / MANIFEST).read_text(encoding="utf-8"))
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    safe = []
    for relative in files if isinstance(files, list) else []:
        path = PurePosixPath(str(relative))
        if not path.is_absolute() and ".." not in path.parts and path.parts:
            safe.append(str(relative))
    return safe


def _write_if_changed(path: Path, text: str, folders: set[str], chmod: frozenset[int]) -> bool:
    data = text.encode("utf-8")
    mode = _mode(path.name)
    if _holds(str(path), data, mode):
        return False
    _replace_file(path, data, mode, folders, chmod)
    return True


def _holds(path: str, data: bytes, mode: int) -> bool:
    """Whether the regular file at ``path`` has ``mode`` and holds ``data`` (its size is compared before its bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or stat.S_IMODE(found.st_mode) != mode or found.st_size != len(data):
            return False
        chunks, size = [], 0
        while size < len(data):  # fstat gave the size: no read to find the end
            chunk = os.read(fd, len(data) - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks) == data
    except OSError:
        return False
    finally:
        os.close(fd)


def _replace_file(path: Path, data: bytes, mode: int, folders: set[str], chmod: frozenset[int]) -> None:
    """Write ``data`` to a new file beside ``path`` and rename it over ``path`` (readers never see a part).

    As ``atomic_write_bytes(durable=False)``, for tens of thousands of files: each folder is created once
    (``folders`` remembers them), the temporary file is created with ``mode`` (``fchmod`` only where the umask
    narrows it), and no file object is built.
    """
    folder = str(path.parent)
    temporary = os.path.join(folder, f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        _create_file(temporary, data, mode, folders, chmod)
        os.replace(temporary, path)
    except FileExistsError:  # not ours to remove (a name drawn twice)
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _remove(out_dir: Path, relative: str) -> None:
    path = out_dir / relative
    if path.is_file() or path.is_symlink():
        path.unlink()
    parent = path.parent
    while parent != out_dir and out_dir in parent.parents:
        try:
            parent.rmdir()  # only succeeds when empty
        except OSError:
            break
        parent = parent.parent
