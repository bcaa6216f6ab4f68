"""Validate cache: a pipeline file's validated specs, reused while nothing they were built from changed.

An entry is found by the pipeline file's content, its name as shown, the overrides and loopc's own
front-end code; it is used only if every config file and group folder composition looked at
(``ComposedSpec.inputs``) still has the content (or absence) it had. Entries are JSON (never
pickles) and are validated again by pydantic when read, so a damaged entry is a miss, not an error.
Specs with errors are never stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from loopc.compiler.spec.models import Spec

CACHE_FORMAT = 1
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
    """Entries under ``folder/validate-<format>/``; every failure to read or write is a miss."""

    def __init__(self, folder: Path):
        self.folder = Path(folder) / f"validate-{CACHE_FORMAT}"

    def key(self, primary: bytes, display: str, overrides: Iterable[str]) -> str:
        payload = json.dumps([code_digest(), display, list(overrides), _sha(primary)])
        return _sha(payload.encode("utf-8"))

    def get(self, key: str) -> list[CachedSpec] | None:
        try:
            entry = json.loads((self._path(key)).read_bytes())
            if any(input_digest(path) != digest for path, digest in entry["inputs"]):
                return None
            return [_from_json(item) for item in entry["specs"]]
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, key: str, inputs: Iterable[str], specs: list[CachedSpec]) -> None:
        entry = {"inputs": [[path, input_digest(path)] for path in sorted(set(inputs))],
                 "specs": [_to_json(item) for item in specs]}
        try:
            _atomic_write(self._path(key), json.dumps(entry, separators=(",", ":")).encode("utf-8"))
        except OSError:
            pass  # a read-only or full cache folder only costs speed

    def groups(self, file: Path) -> list[str] | None:
        """The config groups of a pipeline file as discovery saw them, if its content was seen before."""
        try:
            groups = json.loads(self._path(self._groups_key(file), "groups").read_bytes())
            return groups if isinstance(groups, list) and all(isinstance(g, str) for g in groups) else None
        except (OSError, ValueError):
            return None

    def put_groups(self, file: Path, groups: Iterable[str]) -> None:
        try:
            path = self._path(self._groups_key(file), "groups")
            _atomic_write(path, json.dumps(sorted(groups)).encode("utf-8"))
        except OSError:
            pass

    def _groups_key(self, file: Path) -> str:
        return _sha(json.dumps([code_digest(), _sha(file.read_bytes())]).encode("utf-8"))

    def _path(self, key: str, kind: str = "specs") -> Path:
        return self.folder / kind / key[:2] / f"{key}.json"


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
    from pydantic import VERSION

    import loopc.compiler
    import loopc.runtime

    roots = {"compiler": Path(loopc.compiler.__file__).parent, "runtime": Path(loopc.runtime.__file__).parent}
    digest = hashlib.sha256(f"pydantic {VERSION}\0".encode())
    for entry in _CODE:
        side, _, rest = entry.partition("/")
        target = roots[side] / rest
        for path in sorted(target.rglob("*.py")) if target.is_dir() else [target]:
            digest.update(f"{side}/{path.relative_to(roots[side]).as_posix()}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _to_json(item: CachedSpec) -> dict[str, Any]:
    return {"spec": item.spec.model_dump_json(), "spec_hash": item.spec_hash, "sweep_point": item.sweep_point,
            "positions": json.dumps([list(item.positions), list(item.positions.values())], separators=(",", ":"))}


def _from_json(data: dict[str, Any]) -> CachedSpec:
    positions = LazyPositions(str(data["positions"]))
    return CachedSpec(Spec.model_validate_json(data["spec"]), str(data["spec_hash"]), dict(data["sweep_point"]), positions)


def _atomic_write(path: Path, data: bytes) -> None:
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
