"""Pipelines of two sides matched by name; per pipeline the classified spec changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from loopc.compiler.diff.classes import CLASSES, classify, most_conservative
from loopc.compiler.diff.compare import Change, compare
from loopc.compiler.spec.models import Spec

Status = Literal["changed", "added", "removed", "unchanged"]


@dataclass(frozen=True)
class SpecChange:
    """One changed spec path with what the change means."""

    change: Change
    klass: str
    topic: str


@dataclass(frozen=True)
class StepChange:
    """A step whose fingerprint differs between the sides (``changed``), or exists on one side only."""

    plan: str
    step: str
    change: Literal["changed", "added", "removed"]
    why: str


@dataclass(frozen=True)
class Side:
    """One pipeline as loaded on one side: its validated spec and the file it came from."""

    spec: Spec
    file: str


@dataclass(frozen=True)
class PipelineDiff:
    name: str
    status: Status
    file: str  # the head file, or the base file of a removed pipeline
    targets: tuple[str, ...]
    changes: tuple[SpecChange, ...] = ()
    steps: tuple[StepChange, ...] = field(default=())

    @property
    def klass(self) -> str | None:
        """The most conservative class of the changes (None when nothing changed in a matched pipeline)."""
        return most_conservative([c.klass for c in self.changes])


def diff_pipelines(base: Mapping[str, Side], head: Mapping[str, Side]) -> list[PipelineDiff]:
    """Every pipeline of either side, sorted by name, with its classified changes."""
    diffs = []
    for name in sorted(set(base) | set(head)):
        old, new = base.get(name), head.get(name)
        if old is None or new is None:
            side = new or old
            diffs.append(PipelineDiff(name, "added" if old is None else "removed", side.file,
                                      tuple(side.spec.pipeline.targets)))
            continue
        same = old.spec is new.spec  # the base side took the head's spec: its files are the same
        changes = () if same else tuple(classified(compare(_dump(old.spec), _dump(new.spec))))
        diffs.append(PipelineDiff(name, "changed" if changes else "unchanged", new.file,
                                  tuple(new.spec.pipeline.targets), changes))
    return diffs


def classified(changes: list[Change]) -> list[SpecChange]:
    """Each change with its class and topic, the most conservative classes first (stable within a class)."""
    out = []
    for change in changes:
        rule = classify(change.path)
        out.append(SpecChange(change, rule.klass, rule.topic))
    return sorted(out, key=lambda item: CLASSES.index(item.klass))


def _dump(spec: Spec) -> dict[str, Any]:
    return spec.model_dump(mode="json")
