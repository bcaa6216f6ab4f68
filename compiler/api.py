"""Front-end entry point: find, compose and validate every pipeline under a path."""

from __future__ import annotations

import hashlib
import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Any, Callable, Iterable, Iterator

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.spec.cache import CachedSpec, ValidateCache
from loopc.compiler.spec.collector import collector_paused
from loopc.compiler.spec.parallel import flatten, map_chunks, worker_count

if TYPE_CHECKING:
    from loopc.compiler.frontend.compose import ComposedSpec
    from loopc.compiler.frontend.load import Position, RawDocument, SpecPath
    from loopc.compiler.spec.models import Spec

# The front end and pydantic are imported on first use: a run served by the cache never loads them.


def compose_spec(file: Path, overrides: tuple[str, ...], **options: Any) -> list[ComposedSpec]:
    from loopc.compiler.frontend.compose import compose_spec as compose

    return compose(file, overrides, **options)


def read_spec_file(file: Path, display: str) -> RawDocument:
    from loopc.compiler.frontend.load import read_spec_file as read

    return read(file, display)


def validate_spec(composed: ComposedSpec) -> Spec:
    from loopc.compiler.spec.validate import validate_spec as validate

    return validate(composed)


_SPEC_MARKER = re.compile(rb"^loopc\s*:", re.MULTILINE)
_SKIP_DIRS = {".git", ".loopc", "__pycache__", ".venv", "node_modules", "build", "dist"}


@dataclass(frozen=True)
class LoadedSpec:
    """One validated pipeline (one per point of a command-line sweep)."""

    spec: Spec
    file: Path  # the pipeline file, absolute
    root: Path  # its directory, absolute: relative paths in the spec resolve against it
    spec_hash: str  # sha256 of the canonical JSON of spec.model_dump(mode="json")
    sweep_point: dict[str, str] = field(default_factory=dict)  # e.g. {"model.optimizer.lr": "1e-3"}
    display: str = ""  # the file as the user named it (for messages)
    positions: dict[SpecPath, Position] = field(default_factory=dict, compare=False, repr=False)
    """Source map of the composed spec: path tuple -> (file, line, column); locate later errors with it."""
    inputs: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """Every config file and group folder composition looked at, present or not (``ComposedSpec.inputs``)."""
    groups: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """The config group folders beside the pipeline file, as discovery found them (it skips their files)."""


Found = tuple[Path, "RawDocument | None", tuple[str, ...]]  # a pipeline file, its parsed text if read, its groups
Walk = Callable[..., Iterable[tuple[str, list[str], list[str]]]]  # os.walk(root, followlinks=True) or a stand-in


def spec_hash(spec: Spec) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of the validated spec."""
    data = json.loads(spec.model_dump_json())  # same values as model_dump(mode="json"), built in Rust
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_project(path: Path | str, overrides: Iterable[str] = (), jobs: int | None = 1,
                 cache: ValidateCache | None = None, walk: Walk = os.walk) -> list[LoadedSpec]:
    """Every pipeline under ``path`` (a pipeline file or a directory), composed and validated.

    Raises SpecErrors with every error of every file. ``jobs``: worker processes (None: one per 128
    files up to the CPU count); the result is the same for any value. Callers other than the CLI keep
    the default 1: spawned workers re-import the caller's ``__main__``. ``cache``: reuse the specs of
    pipelines whose files did not change (spec/cache.py); the result is the same. ``walk``: ``os.walk``, or a
    stand-in that lists files not written out (a git revision's, for ``loopc plan``).
    """
    overrides = tuple(overrides)
    with collector_paused(), _indexed(cache, Path(path)):
        loaded = _load_all(discover(Path(path), cache, walk), overrides, jobs, cache)
    _check_unique_names(loaded)
    return loaded


def validate_project(path: Path | str, overrides: Iterable[str] = (), jobs: int | None = 1,
                     cache: ValidateCache | None = None, built: list[LoadedSpec] | None = None) -> int:
    """How many specs ``load_project`` would return (raising the same errors), without building the specs
    of cache hits: what ``loopc validate`` needs. ``built`` receives every spec it did build (those are the
    ones whose warnings matter: a spec with warnings is never a cache hit)."""
    overrides = tuple(overrides)
    built = [] if built is None else built
    if cache is None:
        built.extend(load_project(path, overrides, jobs))
        return len(built)
    with collector_paused(), _indexed(cache, Path(path)):
        names: dict[Path, list[str]] = {}
        missed = []
        for file, document, groups in discover(Path(path), cache):
            hit = cache.names(cache.key(str(file), str(file), overrides))
            if hit is not None:
                names[file] = hit
            else:
                missed.append((file, document, groups))
        for item in _load_all(missed, overrides, jobs, cache):
            built.append(item)
            names.setdefault(Path(item.display), []).append(item.spec.pipeline.name)
    distinct = [name for file_names in names.values() for name in set(file_names)]
    if len(set(distinct)) < len(distinct):  # one name in two files: load them all to locate the error
        built[:] = load_project(path, overrides, jobs, cache)
        return len(built)
    return sum(map(len, names.values()))


@contextmanager
def _indexed(cache: ValidateCache | None, root: Path) -> Iterator[None]:
    if cache is None:
        yield
        return
    cache.begin(root)
    try:
        yield
    finally:
        cache.end()


def _load_all(found: list[Found], overrides: tuple[str, ...], jobs: int | None,
              cache: ValidateCache | None) -> list[LoadedSpec]:
    workers = worker_count(len(found), jobs)
    if workers > 1:
        loaded, errors = flatten(map_chunks(partial(_load_chunk, overrides=overrides, cache=cache), found, workers))
    else:
        loaded, errors = _load_chunk(found, overrides, cache)
    if errors:
        raise SpecErrors(errors)
    return loaded


def _load_chunk(found: list[Found], overrides: tuple[str, ...],
                cache: ValidateCache | None = None) -> tuple[list[LoadedSpec], list[SpecError]]:
    loaded, errors = [], []
    for file, document, groups in found:
        try:
            loaded.extend(load_spec(file, overrides, document, cache, groups))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    return loaded, errors


def load_spec(file: Path, overrides: tuple[str, ...] = (), document: RawDocument | None = None,
              cache: ValidateCache | None = None, groups: tuple[str, ...] = ()) -> list[LoadedSpec]:
    """Compose and validate one pipeline file (whose config ``groups`` discovery found): one LoadedSpec per
    sweep point."""
    key = cache.key(str(file), str(file), overrides) if cache is not None else ""
    hit = cache.get(key) if cache is not None else None
    if hit is not None:
        absolute = file.resolve()
        return [LoadedSpec(item.spec, absolute, absolute.parent, item.spec_hash, item.sweep_point, str(file),
                           item.positions, item.inputs, groups) for item in hit]
    results, errors, inputs = [], [], set()
    for composed in compose_spec(file, overrides, display=str(file), primary=document):
        inputs.update(composed.inputs)
        try:
            spec = validate_spec(composed)
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e not in errors)
            continue
        results.append(_loaded(file, spec, composed, groups))
    if errors:
        raise SpecErrors(errors)
    if cache is not None and not _warned(results):  # warnings are shown on every run, so never cached
        cache.put(key, inputs, [CachedSpec(r.spec, r.spec_hash, r.sweep_point, r.positions) for r in results])
    return results


def _loaded(file: Path, spec: Spec, composed: ComposedSpec, groups: tuple[str, ...]) -> LoadedSpec:
    absolute = file.resolve()
    return LoadedSpec(spec, absolute, absolute.parent, spec_hash(spec), composed.sweep_point, str(file),
                      composed.positions, composed.inputs, groups)


def _warned(results: list[LoadedSpec]) -> bool:
    from loopc.compiler.spec.spec_warnings import spec_warnings

    return any(spec_warnings(r.spec) for r in results)


def discover(path: Path, cache: ValidateCache | None = None, walk: Walk = os.walk) -> list[Found]:
    """Pipeline files under ``path``, sorted, with their config groups; a file named directly is always a
    pipeline (its groups are not looked for).

    With ``cache``, a pipeline file seen before is not parsed here (its config groups are cached).
    """
    if path.is_file():
        return [(path, None, ())]
    if not path.exists():
        raise SpecErrors([SpecError(str(path), 1, 1, "LPC501", "", "no such file or directory",
                                    "give a pipeline file or a directory of specs")])
    if walk is os.walk and isinstance(cache, ValidateCache):
        walk = cache.walk  # unchanged folders are not listed again
    found, errors = [], []
    group_folders = _GroupFolders()
    for name in _walk_yaml(path, walk, group_folders.plain):
        if group_folders.holds(name) or not _is_spec(name, cache):
            continue
        file = Path(name)
        known = cache.groups(file) if cache is not None else None
        if known is not None:
            group_folders.add(name, known)
            found.append((file, None, tuple(known)))
            continue
        try:
            document = read_spec_file(file, name)
        except SpecErrors as exc:
            errors.extend(exc.errors)
            continue
        groups = _groups(document)
        if cache is not None:
            cache.put_groups(file, groups)
        group_folders.add(name, groups)
        found.append((file, document, tuple(sorted(groups))))
    if errors:
        raise SpecErrors(errors)
    found.sort(key=lambda item: str(item[0]))
    if not found:
        raise SpecErrors([SpecError(str(path), 1, 1, "LPC502", "", "no pipeline specs found (no *.yaml file with "
                                    "a top-level 'loopc:' key)", "start one with 'loopc init DIR --example churn'")])
    return found


class _GroupFolders:
    """The config group folders of the pipelines found so far (their files are options, not pipelines), spelled as
    ``str(Path(file).parent / group)``: subfolders, which the walk does not enter (``plain``), and any other (a
    group named '.' is the pipeline's own folder), which ``holds`` checks per file."""

    def __init__(self):
        self.plain: set[str] = set()
        self._other: set[str] = set()

    def add(self, file: str, groups: Iterable[str]) -> None:
        parent = os.path.dirname(file) or "."
        for group in groups:
            if group and group != "." and "/" not in group:
                self.plain.add(group if parent == "." else os.path.join(parent, group))
            else:
                self._other.add(str(Path(parent) / group))

    def holds(self, file: str) -> bool:
        """Whether ``file`` is inside a group folder the walk could not skip."""
        return bool(self._other) and _inside(file, self._other)


def _inside(file: str, folders: set[str]) -> bool:
    """Whether one of ``file``'s parent folders (as ``Path.parents`` spells them) is in ``folders``."""
    parent = os.path.dirname(file) or "."
    while parent not in folders:
        up = (os.path.dirname(parent) or ".") if parent != "." else parent
        if up == parent:
            return False
        parent = up
    return True


def _yaml_files(root: Path, walk: Walk = os.walk) -> list[str]:
    """Every *.yaml file below ``root``, in the order and spelling of ``_walk_yaml``."""
    return list(_walk_yaml(root, walk))


def _walk_yaml(root: Path, walk: Walk = os.walk, skip: AbstractSet[str] = frozenset()) -> Iterator[str]:
    """Every *.yaml file below ``root`` (symbolic links followed, as ``rglob``), spelled as ``str(Path)`` spells
    it: a folder's files sorted, then its subfolders' in name order (so a pipeline precedes its groups). Folders
    named in _SKIP_DIRS are not entered, nor a folder whose spelling is in ``skip`` once its parent's files
    were consumed (the caller adds a pipeline's config group folders to it meanwhile)."""
    top, spelled = os.fspath(root), str(Path(root))  # one Path in all: "./a" is "a", "." is ""
    top_prefix = "" if spelled == "." else spelled.rstrip("/") + "/"
    for folder, subfolders, names in walk(root, followlinks=True):
        below = folder[len(top):].lstrip("/")  # the folder names between root and here, "/"-joined
        prefix = top_prefix + below + "/" if below else top_prefix
        yield from sorted(prefix + n for n in names if n.endswith(".yaml"))
        subfolders[:] = sorted(d for d in subfolders if d not in _SKIP_DIRS and prefix + d not in skip)


def _is_spec(file: str, cache: ValidateCache | None) -> bool:
    known = cache.is_spec(file) if cache is not None else None
    if known is None:
        known = _looks_like_spec(file)
        if cache is not None:
            cache.put_is_spec(file, known)
    return known


def _looks_like_spec(file: str) -> bool:
    try:
        with open(file, "rb") as handle:
            return _SPEC_MARKER.search(handle.read()) is not None
    except OSError:
        return False


def _groups(document: RawDocument) -> set[str]:
    from loopc.compiler.frontend.defaults import parse_defaults

    entries, _ = parse_defaults(document, "")
    return {e.group.split("/")[0] for e in entries if e.group}


def _check_unique_names(loaded: list[LoadedSpec]) -> None:
    """Two different files may not define the same pipeline name (they would share state)."""
    first: dict[str, LoadedSpec] = {}
    errors = []
    for item in loaded:
        name = item.spec.pipeline.name
        other = first.setdefault(name, item)
        if other.file != item.file:
            where = item.positions.get(("pipeline", "name"), (item.display, 1, 1))
            errors.append(SpecError(*where, "LPC504", "pipeline.name",
                                    f"pipeline name '{name}' is also used by {other.display}",
                                    "give every pipeline a unique name"))
    if errors:
        raise SpecErrors(errors)
