"""Resolving a dataset source (local path, glob, pyarrow filesystem URI) into the files it names.

What those files hold is read by :mod:`loopc.runtime.data.formats`; which bytes are read, and
that they do not change meanwhile, is :mod:`loopc.runtime.data.snapshot`'s job.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.fs as pafs

from loopc.runtime.data.errors import DataError, NoFiles

__all__ = ["DataError", "SourceFiles", "remote_timeout", "resolve_files"]

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
TIMEOUT_ENV = "LOOPC_SOURCE_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SourceFiles:
    """The files a source resolves to: a filesystem, a base directory and sorted relative names."""

    filesystem: pafs.FileSystem
    base: str
    names: tuple[str, ...]

    def path(self, name: str) -> str:
        return f"{self.base.rstrip('/')}/{name}" if self.base else name


def _glob_regex(pattern: str) -> re.Pattern:
    """``*`` and ``?`` stay inside one folder, ``**/`` spans any number of folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        else:
            char = pattern[i]
            out.append({"*": "[^/]*", "?": "[^/]"}.get(char, re.escape(char)))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _split_glob(path: str) -> tuple[str, str]:
    """``data/x/*.parquet`` -> (``data/x``, ``*.parquet``); a plain path -> (path, '')."""
    parts = PurePosixPath(path).parts
    for index, part in enumerate(parts):
        if _GLOB_CHARS.search(part):
            return str(PurePosixPath(*parts[:index])) if index else "", "/".join(parts[index:])
    return path, ""


def remote_timeout() -> float:
    """Seconds a remote filesystem may take to answer: ``$LOOPC_SOURCE_TIMEOUT``, else 60."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        seconds = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        raise DataError(f"${TIMEOUT_ENV}={text!r} is not a number of seconds") from None
    if seconds <= 0:
        raise DataError(f"${TIMEOUT_ENV}={text!r} must be a positive number of seconds")
    return seconds


def _bounded(filesystem: pafs.FileSystem) -> pafs.FileSystem:
    """The same remote filesystem, but one that gives up after ``remote_timeout()`` (S3, GCS)."""
    seconds = remote_timeout()
    if isinstance(filesystem, pafs.S3FileSystem):
        options = filesystem.__reduce__()[1][0]
        options.update(connect_timeout=seconds, request_timeout=seconds,
                       retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3))
        return pafs.S3FileSystem(**options)
    if isinstance(filesystem, pafs.GcsFileSystem):
        options = filesystem.__reduce__()[1][0]
        options.update(retry_time_limit=dt.timedelta(seconds=seconds))
        return pafs.GcsFileSystem(**options)
    return filesystem


def _filesystem(location: str, root: Path) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a URI, or the local filesystem for a path under ``root``."""
    if "://" in location:
        try:
            filesystem, path = pafs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise DataError(f"cannot open '{location}': {error}") from None
        return _bounded(filesystem), path
    local = Path(location) if Path(location).is_absolute() else Path(root) / location
    return pafs.LocalFileSystem(), local.resolve().as_posix()


def _visible(name: str) -> bool:
    return not any(part.startswith((".", "_")) and "=" not in part for part in name.split("/"))


def _raise(error: OSError) -> None:
    raise DataError(f"cannot list '{error.filename}': {error.strerror}") from None


def _list_local(base: str) -> list[str]:
    """Relative names of every file under ``base`` (symlinked folders not followed, as pyarrow does).

    Names are decoded as the OS does (undecodable bytes become surrogates); see ``_check_utf8``.
    """
    names = []
    for folder, _, files in os.walk(base, onerror=_raise):
        for name in files:
            if os.path.isfile(os.path.join(folder, name)):
                names.append(os.path.relpath(os.path.join(folder, name), base).replace(os.sep, "/"))
    return names


def _list_remote(filesystem: pafs.FileSystem, base: str) -> list[str]:
    """Relative names of every file under ``base``, or [] when it does not exist."""
    prefix = base.rstrip("/") + "/"
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return [i.path[len(prefix):] for i in infos if i.type == pafs.FileType.File and i.path.startswith(prefix)]
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot list '{base}': {error}") from None
    except UnicodeDecodeError:
        raise DataError(f"a file name under '{base}' is not valid UTF-8; rename it (loopc reads files whose "
                        "names are UTF-8)") from None


def _check_utf8(files: SourceFiles) -> None:
    """DataError naming the first selected file whose name is not UTF-8 (loopc reads UTF-8 names only)."""
    for name in files.names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(files.path(name))
            raise DataError(f"file name {raw!r} is not valid UTF-8; rename the file (loopc reads files whose "
                            "names are UTF-8) or narrow source.path so it does not match") from None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _excluded(spec: str, base: str, exclude: Iterable[Path]) -> list[str]:
    """The excluded folders (resolved) that may hold files under ``base``; DataError if ``base`` is inside one."""
    folders = [Path(folder).resolve().as_posix() for folder in exclude]
    for folder in folders:
        if _inside(base, folder):
            raise DataError(f"source '{spec}' lies inside loopc's state directory '{folder}', which holds loopc's "
                            "own files, not data; move the data or set state_dir elsewhere")
    return folders


def _select(names: list[str], pattern: str, source: dict) -> list[str]:
    names = [n for n in names if _visible(n)]
    if pattern:
        regex = _glob_regex(pattern)
        return [n for n in names if regex.match(n)]
    if source.get("format") is None:
        return [n for n in names if PurePosixPath(n).suffix.lower() in FORMATS]
    return names


def _info(filesystem: pafs.FileSystem, spec: str, base: str) -> pafs.FileInfo:
    try:
        return filesystem.get_file_info(base)
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot reach source '{spec}': {error}") from None


def resolve_files(source: dict, root: Path, exclude: Iterable[Path] = ()) -> SourceFiles:
    """Expand a source's path or glob into the sorted files it names; DataError when none match.

    Local files under a folder of ``exclude`` (the state directory) are never part of a source.
    """
    spec = source["path"]
    scheme, _, rest = spec.rpartition("://")
    base_part, pattern = _split_glob(rest if scheme else spec)
    filesystem, base = _filesystem(f"{scheme}://{base_part}" if scheme else base_part or ".", root)
    local = isinstance(filesystem, pafs.LocalFileSystem)
    folders = _excluded(spec, base, exclude) if local else []
    info = _info(filesystem, spec, base)
    if not pattern and info.type == pafs.FileType.File:
        parent, _, name = base.rpartition("/")
        return SourceFiles(filesystem, parent, (name,))
    listed = _list_local(base) if local and info.type == pafs.FileType.Directory else []
    listed = listed if local else _list_remote(filesystem, base)
    names = [n for n in _select(listed, pattern, source) if not any(_inside(f"{base}/{n}", f) for f in folders)]
    if not names:
        where = f"under '{base}'" if info.type == pafs.FileType.Directory else f"('{base}' does not exist)"
        raise NoFiles(f"source '{spec}' matches no files {where}; check source.path and the project root")
    files = SourceFiles(filesystem, base, tuple(sorted(names)))
    _check_utf8(files)
    return files
