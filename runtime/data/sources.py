"""Reading dataset sources (local paths, globs, pyarrow filesystem URIs) and fingerprinting them.

Schema enforcement and checks live in :mod:`loopc.runtime.data.checks`, splitting in
:mod:`loopc.runtime.data.split`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}
CSV_OPTIONS = {"delimiter", "quote_char", "skip_rows", "encoding"}
_GLOB_CHARS = re.compile(r"[*?\[]")
_CHUNK = 1 << 20


class DataError(Exception):
    """A dataset cannot be read, does not match its schema, or fails its checks."""


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


def _filesystem(location: str, root: Path) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and path for a URI, or the local filesystem for a path under ``root``."""
    if "://" in location:
        try:
            return pafs.FileSystem.from_uri(location)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
            raise DataError(f"cannot open '{location}': {error}") from None
    local = Path(location) if Path(location).is_absolute() else Path(root) / location
    return pafs.LocalFileSystem(), local.resolve().as_posix()


def _visible(name: str) -> bool:
    return not any(part.startswith((".", "_")) and "=" not in part for part in name.split("/"))


def _list(filesystem: pafs.FileSystem, base: str) -> list[str]:
    """Relative names of every file under ``base``, or [] when it does not exist."""
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
    except (OSError, pa.ArrowInvalid) as error:
        raise DataError(f"cannot list '{base}': {error}") from None
    prefix = base.rstrip("/") + "/"
    return [i.path[len(prefix):] for i in infos if i.type == pafs.FileType.File and i.path.startswith(prefix)]


def resolve_files(source: dict, root: Path) -> SourceFiles:
    """Expand a source's path or glob into the sorted files it names; DataError when none match."""
    spec = source["path"]
    scheme, _, rest = spec.rpartition("://")
    base_part, pattern = _split_glob(rest if scheme else spec)
    filesystem, base = _filesystem(f"{scheme}://{base_part}" if scheme else base_part or ".", root)
    info = filesystem.get_file_info(base)
    if not pattern and info.type == pafs.FileType.File:
        parent, _, name = base.rpartition("/")
        return SourceFiles(filesystem, parent, (name,))
    names = [n for n in _list(filesystem, base) if _visible(n)]
    if pattern:
        regex = _glob_regex(pattern)
        names = [n for n in names if regex.match(n)]
    elif source.get("format") is None:
        names = [n for n in names if PurePosixPath(n).suffix.lower() in FORMATS]
    if not names:
        where = f"under '{base}'" if info.type == pafs.FileType.Directory else f"('{base}' does not exist)"
        raise DataError(f"source '{spec}' matches no files {where}; check source.path and the project root")
    return SourceFiles(filesystem, base, tuple(sorted(names)))


def _format(source: dict, name: str) -> str:
    declared = source.get("format")
    if declared:
        return declared
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"cannot tell the format of '{name}'; set source.format to parquet or csv")
    return FORMATS[suffix]


def _read_csv(stream, options: dict) -> pa.Table:
    unknown = sorted(set(options) - CSV_OPTIONS)
    if unknown:
        raise DataError(f"unknown csv option(s) {unknown}; supported: {sorted(CSV_OPTIONS)}")
    read = pacsv.ReadOptions(skip_rows=int(options.get("skip_rows", 0)), encoding=options.get("encoding", "utf8"))
    parse = pacsv.ParseOptions(
        delimiter=options.get("delimiter", ","), quote_char=options.get("quote_char", '"')
    )
    return pacsv.read_csv(stream, read_options=read, parse_options=parse)


def _hive_columns(name: str) -> dict[str, str]:
    """``year=2024/month=01/part.parquet`` -> {'year': '2024', 'month': '01'}."""
    return dict(part.split("=", 1) for part in PurePosixPath(name).parts[:-1] if "=" in part)


def _read_one(files: SourceFiles, name: str, source: dict) -> pa.Table:
    path, fmt = files.path(name), _format(source, name)
    try:
        if fmt == "parquet":
            if source.get("options"):
                raise DataError(f"parquet sources take no options, got {sorted(source['options'])}")
            table = pq.read_table(path, filesystem=files.filesystem)
        else:
            with files.filesystem.open_input_stream(path) as stream:
                table = _read_csv(stream, dict(source.get("options") or {}))
    except (pa.ArrowException, OSError) as error:
        raise DataError(f"cannot read {fmt} file '{path}': {error}") from None
    if source.get("partitioning") == "hive":
        for key, value in _hive_columns(name).items():
            if key not in table.column_names:
                table = table.append_column(key, pa.array([value] * table.num_rows, pa.string()))
    return table


def read_source(source: dict, root: Path) -> pa.Table:
    """Read every file of ``source`` (a ``Source`` dict) in sorted order into one table."""
    files = resolve_files(source, root)
    tables = [_read_one(files, name, source) for name in files.names]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DataError(f"files of source '{source['path']}' have incompatible schemas: {error}") from None


def fingerprint_files(files: SourceFiles) -> str:
    """sha256 over each file's relative name and bytes, in sorted name order, streamed."""
    digest = hashlib.sha256()
    for name in sorted(files.names):
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded)
        file_digest = hashlib.sha256()
        with files.filesystem.open_input_stream(files.path(name)) as stream:
            while chunk := stream.read(_CHUNK):
                file_digest.update(chunk)
        digest.update(file_digest.digest())
    return digest.hexdigest()


def fingerprint_source(source: dict, root: Path) -> str:
    """The content fingerprint (dataset version) of a source: changes iff a name or a byte changes."""
    return fingerprint_files(resolve_files(source, root))

