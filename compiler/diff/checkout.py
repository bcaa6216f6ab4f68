"""The base side of ``loopc plan``: the same path at a git revision, extracted into a temporary folder.

``git archive`` reads the object database only: the repository, its index, work tree and
worktree list are left as they are.
"""

from __future__ import annotations

import shutil
import subprocess
import tarfile
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
    """``git archive SHA -- relative`` unpacked into ``into`` (links leaving it are refused)."""
    command = ["git", "-c", "core.quotePath=false", "archive", "--format=tar", sha, "--", relative]
    with subprocess.Popen(command, cwd=top, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
                archive.extractall(into, filter="data")
        except (tarfile.TarError, OSError) as exc:
            proc.kill()
            raise LoopcError(f"cannot unpack {sha[:12]}:{relative}: {exc}") from None
        error = proc.stderr.read().decode(errors="replace").strip()
    if proc.returncode != 0:
        raise LoopcError(f"git archive {sha[:12]} -- {relative} failed: {error}")


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
