"""The base side of ``loopc plan``: the same path at a git revision, extracted into a temporary folder.

The files are read from the object database (``git ls-tree`` and ``git cat-file --batch``), as
committed: no ``export-ignore``/``export-subst`` attributes apply, and the repository, its index,
work tree and worktree list are left as they are. Symbolic links and submodules are left out.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from loopc.compiler.errors import LoopcError, UsageError


@contextmanager
def revision_of(path: Path, revision: str) -> Iterator[tuple[Path | None, dict[str, str]]]:
    """``path`` as it was at ``revision`` (None if it did not exist there), and how to name its files:
    ``{scratch folder + "/": revision + ":"}`` (``HEAD:specs/pipeline.yaml``, as git spells it).

    The scratch folder is removed when the block ends. Raises UsageError outside a git work tree or for a
    revision git does not know.
    """
    top = _toplevel(path)
    relative = path.resolve().relative_to(top).as_posix()
    commit = _git(top, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}")
    if commit.returncode != 0:
        raise UsageError(f"--base {revision!r}: not a commit in {top} (fetch it first, e.g. git fetch origin)")
    sha = commit.stdout.strip()
    if relative != "." and _git(top, "cat-file", "-e", f"{sha}:{relative}").returncode != 0:
        yield None, {}
        return
    folder = relative if path.is_dir() else (Path(relative).parent.as_posix())  # a pipeline's groups sit beside it
    with tempfile.TemporaryDirectory(prefix="loopc-plan-") as scratch:
        _extract(top, sha, folder, Path(scratch))
        yield Path(scratch) / relative, {f"{scratch}/": f"{revision}:"}


def _toplevel(path: Path) -> Path:
    folder = path if path.is_dir() else path.parent
    if not folder.is_dir():
        raise UsageError(f"{path}: no such file or directory")
    if shutil.which("git") is None:
        raise UsageError("--base needs git on PATH (or compare with --base-dir DIR)")
    done = _git(folder, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise UsageError(f"{path} is not inside a git work tree; compare with --base-dir DIR instead")
    return Path(done.stdout.strip()).resolve()


def _extract(top: Path, sha: str, relative: str, into: Path) -> None:
    """The regular files of ``sha`` under ``relative`` written below ``into`` at their repository paths."""
    listing = subprocess.run(["git", "ls-tree", "-r", "-z", "--full-tree", sha, "--", relative], cwd=top,
                             capture_output=True, check=False)
    if listing.returncode != 0:
        raise LoopcError(f"git ls-tree {sha[:12]} -- {relative} failed: {listing.stderr.decode(errors='replace')}")
    blobs = []  # (object id, path)
    for record in filter(None, listing.stdout.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.split()
        if kind == b"blob" and mode in (b"100644", b"100755"):
            blobs.append((oid.decode(), path.decode("utf-8", errors="surrogateescape")))
    if blobs:
        _write_blobs(top, blobs, into)


def _write_blobs(top: Path, blobs: list[tuple[str, str]], into: Path) -> None:
    request = "".join(f"{oid}\n" for oid, _ in blobs).encode()
    done = subprocess.run(["git", "cat-file", "--batch"], cwd=top, input=request, capture_output=True, check=False)
    if done.returncode != 0:
        raise LoopcError(f"git cat-file failed: {done.stderr.decode(errors='replace')}")
    data, offset = done.stdout, 0
    for oid, path in blobs:
        header_end = data.index(b"\n", offset)
        size = int(data[offset:header_end].split()[2])
        target = into / path
        if ".." in Path(path).parts or Path(path).is_absolute():
            raise LoopcError(f"refusing to write {path!r} outside the scratch folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[header_end + 1: header_end + 1 + size])
        offset = header_end + 1 + size + 1  # the content is followed by a newline


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
