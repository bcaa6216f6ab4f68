"""The base side of ``loopc plan`` takes the head's specs for pipelines whose files are the same on both sides.

``HeadSpecs`` speaks the cache protocol of ``load_project`` (as ``ValidateCache`` does): a base pipeline
file whose bytes, and the bytes (or absence) of every config file and group folder its head composition
looked at, equal the head's is not parsed, composed or validated again; the head's specs stand for it.
Every other base file is loaded in full. Only inputs inside the compared folder are compared: a pipeline
that read anything outside it is loaded again. Against a git revision (``Revision``) the files are compared
by object id, and the base files of a pipeline loaded again are written out when discovery or composition
is about to read them (its pipeline file, then the folder that holds it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

from loopc.compiler.api import LoadedSpec
from loopc.compiler.diff.checkout import Revision
from loopc.compiler.spec.cache import CachedSpec, input_digest


class HeadSpecs:
    """Head specs for base pipeline files under ``base_root`` that match their counterparts under ``head_root``."""

    def __init__(self, head: Sequence[LoadedSpec], head_root: Path, base_root: Path, revision: Revision | None = None):
        self.head_root, self.base_root, self.revision = str(head_root), str(base_root), revision
        self._head: dict[str, list[LoadedSpec]] = {}
        for item in head:
            self._head.setdefault(os.path.relpath(item.display, self.head_root), []).append(item)
        self._same: dict[str, list[LoadedSpec] | None] = {}

    def begin(self, root: Path) -> None:
        """Nothing to prepare (the protocol's start of a run)."""

    def end(self) -> None:
        """Nothing to write (the protocol's end of a run)."""

    def is_spec(self, file: Path) -> bool | None:
        if self._matching(str(file)) is not None:
            return True
        if self.revision is not None:
            self.revision.need(str(file))  # discovery reads it
        return None

    def put_is_spec(self, file: Path, is_spec: bool) -> None:
        """Findings on the base side are not kept."""

    def groups(self, file: Path) -> list[str] | None:
        found = self._matching(str(file))
        return list(found[0].groups) if found is not None else None

    def put_groups(self, file: Path, groups: Iterable[str]) -> None:
        """Findings on the base side are not kept."""

    def key(self, primary: str, display: str, overrides: Iterable[str]) -> str:
        return primary

    def get(self, key: str) -> list[CachedSpec] | None:
        found = self._matching(key)
        if found is None:
            if self.revision is not None:
                self.revision.need(os.path.dirname(key))  # composition reads the pipeline's folder
            return None
        return [CachedSpec(item.spec, item.spec_hash, item.sweep_point, item.positions,
                           tuple(self._base_path(path) for path in item.inputs)) for item in found]

    def put(self, key: str, inputs: Iterable[str], specs: list[CachedSpec]) -> None:
        """Base-side results are not kept."""

    def stands_for(self, base_file: str) -> bool:
        """Whether the head's specs stand for ``base_file`` (decided here, so also for what worker processes loaded)."""
        return self._matching(base_file) is not None

    def _matching(self, base_file: str) -> list[LoadedSpec] | None:
        """The head's specs of the same pipeline file, when it and every input are the same on both sides."""
        if base_file not in self._same:
            head = self._head.get(os.path.relpath(base_file, self.base_root))
            self._same[base_file] = head if head is not None and self._unchanged(head) else None
        return self._same[base_file]

    def _unchanged(self, head: list[LoadedSpec]) -> bool:
        paths = {head[0].display, *(path for item in head for path in item.inputs)}
        if any(_outside(os.path.relpath(path, self.head_root)) for path in paths):
            return False
        if self.revision is None:
            return all(input_digest(path) == input_digest(self._base_path(path)) for path in paths)
        revision = self.revision
        return all(revision.work_tree_digest(path) == revision.digest(self._base_path(path)) for path in paths)

    def _base_path(self, head_path: str) -> str:
        return os.path.join(self.base_root, os.path.relpath(head_path, self.head_root))


def _outside(relative: str) -> bool:
    return relative == os.pardir or relative.startswith(os.pardir + os.sep)
