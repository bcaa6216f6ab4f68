"""The base side of ``loopc plan``: the same path at a git revision, its files written out only when read.

``git ls-tree`` lists the revision's regular files with their object ids. Discovery walks that listing
(``Revision.walk``), the head's specs stand for pipelines whose files have the same object ids on both sides
(plan_reuse.py), and only the files something reads are written into a scratch folder, from one
``git cat-file --batch``. The files are read as committed: no ``export-ignore``/``export-subst`` attributes
apply, and the repository, its index, work tree and worktree list are left as they are. Symbolic links and
submodules are left out.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

from loopc.compiler.errors import LoopcError, UsageError

_REGULAR = (b"100644", b"100755")


class Revision:
    """The regular files of a revision, laid out below ``scratch`` at their repository paths, each written there
    the first time it is asked for (``need``)."""

    def __init__(self, top: Path, scratch: Path, blobs: dict[str, str]):
        self.top, self.scratch = top, str(scratch)
        self._blobs = blobs  # repository path -> object id
        self._folders = {str(parent) for path in blobs for parent in PurePosixPath(path).parents}
        self._written: set[str] = set()
        self._reader: subprocess.Popen[bytes] | None = None

    def __getstate__(self) -> dict[str, Any]:  # worker processes start their own reader
        return {**self.__dict__, "_reader": None}

    def digest(self, path: str) -> str:
        """The object id of the revision's file at ``path`` (below ``scratch``), ``dir`` for a folder, else ``absent``."""
        relative = self._relative(path)
        if relative is None:
            return "absent"
        if relative in self._blobs:
            return self._blobs[relative]
        return "dir" if relative in self._folders else "absent"

    def work_tree_digest(self, path: str) -> str:
        """What ``digest`` gives for a work-tree file with the same bytes: its object id, ``dir`` or ``absent``."""
        if os.path.isdir(path):
            return "dir"
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            return "absent"
        algorithm = "sha256" if len(next(iter(self._blobs.values()), "")) == 64 else "sha1"
        return hashlib.new(algorithm, b"blob %d\0" % len(data) + data).hexdigest()

    def need(self, path: str) -> bool:
        """Write the revision's file at ``path``, or every file below the folder ``path``; whether one was new."""
        relative = self._relative(path)
        if relative is None:
            return False
        if relative in self._blobs:
            wanted = [relative]
        elif relative in self._folders:
            prefix = "" if relative == "." else relative + "/"
            wanted = [name for name in self._blobs if name.startswith(prefix)]
        else:
            return False
        return self._write([name for name in wanted if name not in self._written])

    def need_all(self) -> bool:
        """Write every file of the revision not written yet; whether there was one."""
        return self._write([name for name in self._blobs if name not in self._written])

    def walk(self, root: str | Path, followlinks: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """``os.walk(root)`` over the revision's files, written or not (top-down; pruning ``subfolders`` works)."""
        tree: dict[str, tuple[set[str], list[str]]] = {}
        for name in self._blobs:
            folder, _, file = name.rpartition("/")
            tree.setdefault(folder or ".", (set(), []))[1].append(file)
        for folder in self._folders:
            if folder != ".":
                parent, _, child = folder.rpartition("/")
                tree.setdefault(parent or ".", (set(), []))[0].add(child)
        top = self._relative(os.fspath(root))
        stack = [(os.fspath(root), top)] if top is not None else []
        while stack:
            folder, relative = stack.pop()
            subfolders, files = tree.get(relative, (set(), []))
            listed = sorted(subfolders)
            yield folder, listed, sorted(files)
            stack.extend((os.path.join(folder, name), name if relative == "." else f"{relative}/{name}")
                         for name in reversed(listed))

    def close(self) -> None:
        if self._reader is not None:
            self._reader.stdin.close()  # type: ignore[union-attr]
            self._reader.wait()
            self._reader.stdout.close()  # type: ignore[union-attr]
            self._reader = None

    def _relative(self, path: str) -> str | None:
        relative = os.path.relpath(os.path.abspath(path), self.scratch)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            return None
        return PurePosixPath(Path(relative)).as_posix()

    def _write(self, names: list[str]) -> bool:
        for name in names:
            if ".." in PurePosixPath(name).parts or PurePosixPath(name).is_absolute():
                raise LoopcError(f"refusing to write {name!r} outside the scratch folder")
            target = os.path.join(self.scratch, name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            partial = f"{target}.{os.getpid()}.partial"  # workers (--jobs) may write the same file: each renames
            with open(partial, "wb") as handle:  # a complete copy into place, so a reader never sees it half-written
                handle.write(self._read(self._blobs[name]))
            os.replace(partial, target)
            self._written.add(name)
        return bool(names)

    def _read(self, oid: str) -> bytes:
        """The content of the object ``oid``, from one ``git cat-file --batch`` kept open."""
        if self._reader is None:
            self._reader = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.top, stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        stdin, stdout = self._reader.stdin, self._reader.stdout
        assert stdin is not None and stdout is not None
        stdin.write(oid.encode() + b"\n")
        stdin.flush()
        header = stdout.readline().split()
        if len(header) != 3:
            raise LoopcError(f"git cat-file could not read the object {oid}: {b' '.join(header).decode(errors='replace')}")
        data = stdout.read(int(header[2]) + 1)  # the content is followed by a newline
        return data[:-1]


@contextmanager
def revision_of(path: Path, revision: str) -> Iterator[tuple[Path | None, dict[str, str], Revision | None]]:
    """``path`` as it was at ``revision`` (None if it did not exist there), how to name its files
    (``{scratch folder + "/": revision + ":"}``: ``HEAD:specs/pipeline.yaml``, as git spells it), and the
    Revision that writes its files into the scratch folder when asked (a pipeline file named directly is
    written at once).

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
        yield None, {}, None
        return
    folder = relative if path.is_dir() else (Path(relative).parent.as_posix())  # a pipeline's groups sit beside it
    with tempfile.TemporaryDirectory(prefix="loopc-plan-") as scratch:
        files = Revision(top, Path(scratch), _listing(top, sha, folder))
        try:
            base = Path(scratch) / relative
            if path.is_dir():
                base.mkdir(parents=True, exist_ok=True)
            else:
                files.need(str(base))
            yield base, {f"{scratch}/": f"{revision}:"}, files
        finally:
            files.close()


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


def _listing(top: Path, sha: str, relative: str) -> dict[str, str]:
    """The regular files of ``sha`` under ``relative``: repository path -> object id."""
    listing = subprocess.run(["git", "ls-tree", "-r", "-z", "--full-tree", sha, "--", relative], cwd=top,
                             capture_output=True, check=False)
    if listing.returncode != 0:
        raise LoopcError(f"git ls-tree {sha[:12]} -- {relative} failed: {listing.stderr.decode(errors='replace')}")
    blobs = {}
    for record in filter(None, listing.stdout.split(b"\0")):
        meta, _, path = record.partition(b"\t")
        mode, kind, oid = meta.split()
        if kind == b"blob" and mode in _REGULAR:
            blobs[path.decode("utf-8", errors="surrogateescape")] = oid.decode()
    return blobs


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
