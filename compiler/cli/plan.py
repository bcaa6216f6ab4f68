"""``loopc plan [PATH] --base REV``: what a change to the specs does, per pipeline, for a pull request.

Both sides are composed and validated; their Spec dumps are compared (so formatting, key order,
comments, anchors and equal numbers written differently are no change), every changed path is
classified (loopc.compiler.diff.classes), and the plans' step fingerprints say which steps would
run. Exit codes: 0 nothing changed, 4 something changed, 1 spec errors on either side, 2 usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

from loopc.compiler.api import LoadedSpec, Walk
from loopc.compiler.cli.explain import History, explain_plan
from loopc.compiler.cli.plan_reuse import HeadSpecs
from loopc.compiler.diff.checkout import revision_of
from loopc.compiler.diff.pipelines import PipelineDiff, Side, StepChange, diff_pipelines
from loopc.compiler.diff.report import PlanReport, SideError, to_json, to_markdown, to_text
from loopc.compiler.errors import SpecError, SpecErrors, UsageError
from loopc.compiler.plan.pipeline import Plan
from loopc.compiler.spec.cache import ValidateCache, default_dir
from loopc.compiler.spec.collector import collector_paused

EXIT_CHANGED = 4
_NO_SPECS = "LPC502"
_RENDER = {"text": to_text, "json": to_json, "markdown": to_markdown}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", nargs="?", default=".", help="pipeline file or directory of specs (default: .)")
    base = parser.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", metavar="REV", help="git revision to compare with (origin/main, a commit)")
    base.add_argument("--base-dir", metavar="DIR", help="the same specs as they were, in another folder")
    parser.add_argument("--format", "-f", choices=tuple(_RENDER), default="text",
                        help="text (default), json, or markdown to post on a pull request")
    parser.add_argument("--jobs", "-j", type=int, default=1, metavar="N",
                        help="worker processes for large trees (default 1; 0: one per 128 pipelines)")
    parser.add_argument("--cache", action="store_true",
                        help="reuse validation results for unchanged pipelines of PATH (as loopc validate --cache)")


def run(args: argparse.Namespace) -> int:
    head_path = Path(args.path)
    if not head_path.exists():
        raise UsageError(f"{args.path}: no such file or directory")
    with collector_paused():  # once for the command: a pause per pipeline would collect after each
        return _run(args, head_path)


def _run(args: argparse.Namespace, head_path: Path) -> int:
    label = args.base if args.base is not None else args.base_dir
    head, head_errors = _load("head", head_path, args.jobs, cache=ValidateCache(default_dir()) if args.cache else None)
    with _base_side(head_path, args) as (base_path, names, revision):
        reused = HeadSpecs(head[3], _folder(head_path), _folder(base_path), revision) if base_path is not None else None
        base, base_errors = _load_base(base_path, args.jobs, names, reused, head[2])
    errors = base_errors + head_errors
    if not errors and not base[0] and not head[0]:
        errors = [SideError("head", SpecError(str(head_path), 1, 1, _NO_SPECS, "", "no pipeline specs found on "
                                              "either side", "give the folder that holds the pipeline files"))]
    report = PlanReport(label, args.path, errors=tuple(errors))
    if not errors:
        report = PlanReport(label, args.path, tuple(_with_steps(diff_pipelines(base[0], head[0]), base[1], head[1])))
    sys.stdout.write(_RENDER[args.format](report))
    return 1 if report.errors else EXIT_CHANGED if report.changed else 0


def _base_side(head_path: Path, args: argparse.Namespace):
    if args.base is not None:
        return revision_of(head_path, args.base)
    base_dir = Path(args.base_dir)
    if not base_dir.exists():
        raise UsageError(f"--base-dir {args.base_dir}: no such file or directory")
    return nullcontext((base_dir, {}, None))


def _folder(path: Path) -> Path:
    """The folder a side's paths are relative to: ``path``, or the folder of a pipeline file."""
    return path if path.is_dir() else path.parent


Planned = dict[str, tuple[tuple, list[Plan]]]  # pipeline -> (its specs' hashes and sweep points, its plans)
Loaded = tuple[dict[str, Side], list[Plan], Planned, list[LoadedSpec]]
_EMPTY: Loaded = ({}, [], {}, [])


def _load_base(path: Path | None, jobs: int, names: dict[str, str], reused: HeadSpecs | None,
               reuse: Planned) -> tuple[Loaded, list[SideError]]:
    """The base side (``_load``); from a revision, loaded again while a file it read had not been written out.

    Loading writes out what discovery and composition are about to read (a pipeline file, its folder); what
    composition read beyond that (a data file elsewhere) is written after, and the side loaded again. After an
    error every file is written and the side loaded again, so that no error comes from a file left out.
    """
    revision = reused.revision if reused is not None else None
    if revision is None:
        return _load("base", path, jobs, names, cache=reused, reuse=reuse)
    while True:
        loaded, errors = _load("base", path, jobs, names, cache=reused, reuse=reuse, walk=revision.walk)
        if errors:
            if revision.need_all():
                continue
            return loaded, errors
        composed = [item for item in loaded[3] if not reused.stands_for(item.display)]
        written = [revision.need(file) for item in composed for file in item.inputs]  # every one, not any()
        if not any(written):
            return loaded, errors


def _load(side: str, path: Path | None, jobs: int, names: dict[str, str] | None = None,
          cache: ValidateCache | HeadSpecs | None = None, reuse: Planned | None = None,
          walk: Walk = os.walk) -> tuple[Loaded, list[SideError]]:
    """The side's pipelines by name, their plans and loaded specs; errors tagged with the side (none: empty side).

    ``names`` renames file prefixes in what is shown (a scratch folder -> ``REV:``). ``cache``: a validate
    cache, or the other side's specs for files that did not change. ``reuse``: the other side's plans, taken
    for a pipeline whose specs are the same (plans depend on the specs alone). ``walk``: what lists the files.
    """
    from loopc.compiler.api import load_project

    if path is None:
        return _EMPTY, []
    names = names or {}
    try:
        loaded = load_project(path, jobs=jobs or None, cache=cache, walk=walk)
        plans, planned = _plan(loaded, reuse or {})
    except SpecErrors as exc:
        if all(e.code == _NO_SPECS for e in exc.errors):
            return _EMPTY, []
        return _EMPTY, [SideError(side, _relocated(e, names)) for e in exc.errors]
    sides = {item.spec.pipeline.name: Side(item.spec, _display(item.display, names)) for item in loaded}
    return (sides, plans, planned, loaded), []


def _plan(loaded: list, reuse: Planned) -> tuple[list[Plan], Planned]:
    """``plan_project(loaded)``, pipeline by pipeline in load order, taking ``reuse``'s plans where the specs match."""
    from loopc.compiler.plan.project import by_pipeline, plan_project

    plans: list[Plan] = []
    planned: Planned = {}
    for group in by_pipeline(loaded):
        name = group[0].spec.pipeline.name
        key = tuple((item.spec_hash, tuple(sorted(item.sweep_point.items()))) for item in group)
        known = reuse.get(name)
        planned[name] = (key, known[1] if known is not None and known[0] == key else plan_project(group))
        plans.extend(planned[name][1])
    return plans, planned


def _display(file: str, names: dict[str, str]) -> str:
    for old, new in names.items():
        if file.startswith(old):
            return new + file[len(old):]
    return file


def _relocated(error: SpecError, names: dict[str, str]) -> SpecError:
    return SpecError(_display(error.file, names), error.line, error.column, error.code,
                     error.spec_path, error.message, error.hint)


def _with_steps(diffs: list[PipelineDiff], base_plans: list[Plan], head_plans: list[Plan]) -> list[PipelineDiff]:
    """Each diff with the steps whose fingerprints differ (explain's reasons), per plan of its pipeline."""
    from dataclasses import replace

    old, new = _by_pipeline(base_plans), _by_pipeline(head_plans)
    out = []
    for diff in diffs:
        base, head = old.get(diff.name, []), new.get(diff.name, [])
        same = len(base) == len(head) and all(a is b for a, b in zip(base, head))  # the plans were reused
        out.append(diff if same else replace(diff, steps=tuple(step_changes(base, head))))
    return out


def _by_pipeline(plans: list[Plan]) -> dict[str, list[Plan]]:
    grouped: dict[str, list[Plan]] = {}
    for plan in plans:
        grouped.setdefault(plan.pipeline, []).append(plan)
    return grouped


def step_changes(base: Sequence[Plan], head: Sequence[Plan]) -> list[StepChange]:
    """Steps of ``head`` that are new or whose fingerprint changed (and why), then steps ``head`` dropped."""
    old_plans = {plan.name: plan for plan in base}
    changes: list[StepChange] = []
    for plan in head:
        old = old_plans.get(plan.name)
        previous = {s.id: {"id": s.id, "fingerprint": s.fingerprint, "config": s.config} for s in old.steps} if old else {}
        for step, verdict in zip(plan.steps, explain_plan(plan, History(previous, {}))):
            if step.id not in previous:
                changes.append(StepChange(plan.name, step.id, "added", "new step"))
            elif previous[step.id]["fingerprint"] != step.fingerprint:
                changes.append(StepChange(plan.name, step.id, "changed", verdict.why))
    kept = {(plan.name, step.id) for plan in head for step in plan.steps}
    changes += [StepChange(plan.name, step.id, "removed", "no longer in the plan")
                for plan in base for step in plan.steps if (plan.name, step.id) not in kept]
    return changes
