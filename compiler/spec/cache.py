"""Validate cache: a pipeline file's validated specs, reused while nothing they were built from changed.

An entry is found by the pipeline file's content, its name as shown, the overrides and loopc's own
front-end code; it is used only if every config file and group folder composition looked at
(``ComposedSpec.inputs``) still has the content (or absence) it had. Entries are JSON (never
pickles) and are validated again by pydantic when read, so a damaged entry is a miss, not an error.
Specs with errors are never stored.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from loopc.compiler.spec.listing import Listings

if TYPE_CHECKING:
    from loopc.compiler.spec.models import Spec

CACHE_FORMAT = 1
_SHA, _SCAN = 4, 5  # positions in a FileIndex record
_RACY_NS = 2_000_000_000
# What validation runs: the front end, the spec checks and the runtime modules they use (expression
# language, metric table, units), relative to the folder holding compiler/ and runtime/.
_CODE = ("compiler/frontend", "compiler/spec", "compiler/api.py", "compiler/errors.py", "runtime/data",
         "runtime/evaluate", "runtime/units.py")


@dataclass(frozen=True)
class CachedSpec:
    """What ``load_spec`` needs to rebuild one LoadedSpec without composing or validating."""

    spec: Spec
    spec_hash: str
    sweep_point: dict[str, str]
    positions: Mapping[tuple[str | int, ...], tuple[str, int, int]]
    inputs: tuple[str, ...] = ()  # what composition looked at (``ComposedSpec.inputs``)


class LazyPositions(Mapping):
    """A source map kept as JSON text until something looks a position up (most runs never do)."""

    def __init__(self, text: str):
        self._text: str | None = text
        self._map: dict[tuple[str | int, ...], tuple[str, int, int]] = {}

    def _positions(self) -> dict[tuple[str | int, ...], tuple[str, int, int]]:
        if self._text is not None:
            paths, wheres = json.loads(self._text)
            self._map, self._text = dict(zip(map(tuple, paths), map(tuple, wheres))), None
        return self._map

    def __getitem__(self, path: tuple[str | int, ...]) -> tuple[str, int, int]:
        return self._positions()[path]

    def __iter__(self) -> Iterator[tuple[str | int, ...]]:
        return iter(self._positions())

    def __len__(self) -> int:
        return len(self._positions())


def default_dir() -> Path:
    """``$LOOPC_CACHE_DIR``, else ``$XDG_CACHE_HOME/loopc``, else ``~/.cache/loopc``."""
    if os.environ.get("LOOPC_CACHE_DIR"):
        return Path(os.environ["LOOPC_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "loopc"


class ValidateCache:
    """Entries under ``folder/validate-<format>/``; every failure to read or write is a miss.

    Between ``begin(root)`` and ``end()`` an index of the files under ``root`` (size, mtime, inode and ctime
    -> sha256, and what discovery found in them) spares reading unchanged files, and a summary per entry
    (inputs and pipeline names) lets ``validate_project`` count hits without building specs.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder) / f"validate-{CACHE_FORMAT}"
        self._index: FileIndex | None = None

    def __getstate__(self) -> dict[str, Any]:  # worker processes hash files themselves
        return {"folder": self.folder, "_index": None}

    def begin(self, root: Path) -> None:
        """Use (and later rewrite) the index of ``root``'s files."""
        self._index = FileIndex.load(self.folder / "index" / f"{_sha(str(Path(root).resolve()).encode())}.json")

    def end(self) -> None:
        """Write the index (files and entries seen since ``begin``), if anything in it changed."""
        if self._index is not None:
            self._index.save()
            self._index = None

    def walk(self, top: str | os.PathLike, followlinks: bool = True) -> Iterator[tuple[str, list[str], list[str]]]:
        """``os.walk(top, followlinks=True)``; an unchanged folder's listing comes from the index (spec/listing.py)."""
        if self._index is None:
            return os.walk(top, followlinks=followlinks)
        return self._index.listings.walk(top, followlinks)

    def digest(self, path: str) -> str:
        """``input_digest(path)``, from the index while the file's size, mtime, inode and ctime are unchanged."""
        return self._index.digest(path) if self._index is not None else input_digest(path)

    def key(self, primary: str, display: str, overrides: Iterable[str]) -> str:
        """The entry of a pipeline file (``primary``: its path) shown as ``display`` under ``overrides``."""
        payload = json.dumps([code_digest(), display, list(overrides), self.digest(primary)])
        return _sha(payload.encode("utf-8"))

    def get(self, key: str) -> list[CachedSpec] | None:
        entry = self._entry(key)
        try:
            if entry is None or not self._inputs_hold(entry["inputs"]):
                return None
            inputs = tuple(path for path, _ in entry["inputs"])
            specs = [_from_json(item, inputs) for item in entry["specs"]]
        except (ValueError, KeyError, TypeError):
            return None
        self._remember(key, entry["inputs"], [s.spec.pipeline.name for s in specs])
        return specs

    def names(self, key: str) -> list[str] | None:
        """The pipeline name of each spec of a valid entry, without validating the specs (validate's count)."""
        summary = self._index.summary(key) if self._index is not None else None
        try:
            if summary is None:
                entry = self._entry(key)
                if entry is None:
                    return None
                summary = {"inputs": entry["inputs"],
                           "names": [json.loads(item["spec"])["pipeline"]["name"] for item in entry["specs"]]}
            if not self._inputs_hold(summary["inputs"]) or not all(isinstance(n, str) for n in summary["names"]):
                return None
        except (ValueError, KeyError, TypeError):
            return None
        self._remember(key, summary["inputs"], summary["names"])
        return list(summary["names"])

    def put(self, key: str, inputs: Iterable[str], specs: list[CachedSpec]) -> None:
        digests = [[path, self.digest(path)] for path in sorted(set(inputs))]
        entry = {"inputs": digests, "specs": [_to_json(item) for item in specs]}
        try:
            _atomic_write(self._path(key), json.dumps(entry, separators=(",", ":")).encode("utf-8"))
        except OSError:
            return  # a read-only or full cache folder only costs speed
        self._remember(key, digests, [s.spec.pipeline.name for s in specs])

    def groups(self, file: Path) -> list[str] | None:
        """The config groups of a pipeline file as discovery saw them, if its content was seen before."""
        return self._index.groups(str(file)) if self._index is not None else None

    def put_groups(self, file: Path, groups: Iterable[str]) -> None:
        if self._index is not None:
            self._index.put_groups(str(file), sorted(groups))

    def is_spec(self, file: Path) -> bool | None:
        """Whether discovery found a top-level ``loopc:`` in the file (None: not known for this content)."""
        return self._index.is_spec(str(file)) if self._index is not None else None

    def put_is_spec(self, file: Path, is_spec: bool) -> None:
        if self._index is not None:
            self._index.put_is_spec(str(file), is_spec)

    def _entry(self, key: str) -> dict[str, Any] | None:
        try:
            entry = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None

    def _inputs_hold(self, inputs: list[list[str]]) -> bool:
        return all(self.digest(path) == digest for path, digest in inputs)

    def _remember(self, key: str, inputs: list[list[str]], names: list[str]) -> None:
        if self._index is not None:
            self._index.remember(key, {"inputs": inputs, "names": names})

    def _path(self, key: str, kind: str = "specs") -> Path:
        return self.folder / kind / key[:2] / f"{key}.json"


class FileIndex:
    """One JSON file per discovery root: file records, folder listings and entry summaries, written whole,
    atomically.

    A record is trusted only while the file's size, mtime, inode and ctime are what they were, and only
    if the file had not changed in the last two seconds before it was recorded (a write within the
    file system's timestamp granularity could otherwise go unseen). Records of files not looked at in
    a run are dropped when it saves.
    """

    def __init__(self, path: Path, files: dict[str, list], summaries: dict[str, dict],
                 folders: dict[str, list] | None = None):
        self.path, self._old, self._old_summaries = path, files, summaries
        self.listings = Listings(folders or {}, _RACY_NS)
        self.files: dict[str, list] = {}
        self.summaries: dict[str, dict] = {}
        self._changed = False

    @classmethod
    def load(cls, path: Path) -> FileIndex:
        try:
            data = json.loads(path.read_bytes())
            folders = data.get("folders", {})
            if (data["code"] == code_digest() and isinstance(data["files"], dict) and isinstance(data["entries"], dict)
                    and isinstance(folders, dict)):
                return cls(path, data["files"], data["entries"], folders)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
        return cls(path, {}, {})

    def digest(self, path: str) -> str:
        record = self._record(path)
        return record[_SHA] if record is not None else "absent"

    def groups(self, path: str) -> list[str] | None:
        record = self._record(path)
        found = record[_SCAN] if record is not None else None
        return found if isinstance(found, list) and all(isinstance(g, str) for g in found) else None

    def is_spec(self, path: str) -> bool | None:
        record = self._record(path)
        found = record[_SCAN] if record is not None else None
        return None if found is None else found is not False

    def put_groups(self, path: str, groups: list[str]) -> None:
        self._scan(path, groups)

    def put_is_spec(self, path: str, is_spec: bool) -> None:
        if not is_spec:
            self._scan(path, False)

    def summary(self, key: str) -> dict[str, Any] | None:
        found = self.summaries.get(key) or self._old_summaries.get(key)
        return found if isinstance(found, dict) else None

    def remember(self, key: str, summary: dict[str, Any]) -> None:
        self._changed |= self._old_summaries.get(key) != summary
        self.summaries[key] = summary

    def save(self) -> None:
        if (not self._changed and set(self.files) == set(self._old) and set(self.summaries) == set(self._old_summaries)
                and not self.listings.changed()):
            return
        data = {"code": code_digest(), "files": self.files, "entries": self.summaries, "folders": self.listings.seen}
        try:
            _atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode("utf-8"))
        except OSError:
            pass

    def _scan(self, path: str, found: Any) -> None:
        record = self._record(path)
        if record is not None and record[_SCAN] != found:
            record[_SCAN], self._changed = found, True

    def _record(self, path: str) -> list | None:
        """[size, mtime_ns, inode, ctime_ns, sha256 or "dir", discovery's finding]; None when nothing is there."""
        if path in self.files:
            return self.files[path]
        try:
            stat = os.stat(path)
        except OSError:
            return None
        signature = [stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns]
        old = self._old.get(path)
        known = isinstance(old, list) and len(old) == 6
        if known and old[:4] == signature:
            record = old
        else:  # what discovery found depends on the content only
            digest = input_digest(path)
            record = signature + [digest, old[_SCAN] if known and old[_SHA] == digest else None]
            self._changed = True
            if time.time_ns() - max(stat.st_mtime_ns, stat.st_ctime_ns) < _RACY_NS:
                record[0] = -1  # never matches: hashed again next time
        self.files[path] = record
        return record


def input_digest(path: str) -> str:
    """sha256 of a file's bytes; ``dir`` for a folder; ``absent`` when nothing is there."""
    target = Path(path)
    if target.is_dir():
        return "dir"
    try:
        return _sha(target.read_bytes())
    except OSError:
        return "absent"


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 of the sources validation runs and pydantic's version: a changed loopc never reuses an entry."""
    import loopc.compiler
    import loopc.runtime

    roots = {"compiler": Path(loopc.compiler.__file__).parent, "runtime": Path(loopc.runtime.__file__).parent}
    digest = hashlib.sha256(b"pydantic " + _pydantic_version_file() + b"\0")
    for entry in _CODE:
        side, _, rest = entry.partition("/")
        target = roots[side] / rest
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(f"{side}/{path.relative_to(roots[side]).as_posix()}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _pydantic_version_file() -> bytes:
    """pydantic's version.py (its VERSION, which pins pydantic-core), read without importing pydantic."""
    origin = importlib.util.find_spec("pydantic").origin
    return (Path(origin).parent / "version.py").read_bytes()


def _to_json(item: CachedSpec) -> dict[str, Any]:
    return {"spec": item.spec.model_dump_json(), "spec_hash": item.spec_hash, "sweep_point": item.sweep_point,
            "positions": json.dumps([list(item.positions), list(item.positions.values())], separators=(",", ":"))}


def _from_json(data: dict[str, Any], inputs: tuple[str, ...]) -> CachedSpec:
    from loopc.compiler.spec.models import Spec

    positions = LazyPositions(str(data["positions"]))
    return CachedSpec(Spec.model_validate_json(data["spec"]), str(data["spec_hash"]), dict(data["sweep_point"]),
                      positions, inputs)


def _atomic_write(path: Path, data: bytes) -> None:
    import tempfile  # only runs that write pay for its imports (random, shutil)

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
