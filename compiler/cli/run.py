"""``loopc run SPEC [OVERRIDES]``: compile for the local target and run the loop here, now.

Each compile lands in ``<state>/compiled/<pipeline>/<digest>/``, named by the sha256 of its files and
never changed once complete, so concurrent runs with different overrides each execute their own plan.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loopc.compiler.errors import LoopcError, UsageError

if TYPE_CHECKING:
    from loopc.compiler.plan.pipeline import Plan

LATEST = "latest"  # compiled/<pipeline>/latest: the digest `loopc run` compiled last (read by `loopc explain`)


@dataclass(frozen=True)
class CompiledPipeline:
    """Where the local plans of one pipeline were written, and where its project lives."""

    pipeline: str
    root: Path
    state: Path
    plans: dict[str, Path]  # plan name -> plan.json

    @property
    def train_plan(self) -> Path:
        return self.plans[self.pipeline]

    @property
    def monitor_plan(self) -> Path | None:
        return self.plans.get(f"{self.pipeline}_monitor")

    @property
    def score_plan(self) -> Path | None:
        return self.plans.get(f"{self.pipeline}_score")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pipeline file, or a directory holding one pipeline")
    parser.add_argument("overrides", nargs="*", help="key=value overrides; key=a,b sweeps the model")
    parser.add_argument("--monitor", action="store_true",
                        help="run the monitor plan instead (a drift breach with action retrain retrains)")
    parser.add_argument("--score", action="store_true",
                        help="run the scoring plan instead (the champion scores scoring.source)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--run-id", default=None, help="resume or name a run (default: a new id)")


def compile_local(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[CompiledPipeline]:
    """load_project + plan_project + local backend into ``ROOT/<state_dir>/compiled/<pipeline>/<digest>/``."""
    from loopc.compiler.api import load_project
    from loopc.compiler.plan.project import plan_project

    loaded = load_project(spec_path, overrides)
    plans = plan_project(loaded)
    compiled = []
    for item in {item.spec.pipeline.name: item for item in loaded}.values():
        name, state = item.spec.pipeline.name, item.root / item.spec.pipeline.state_dir
        mine = [plan for plan in plans if plan.pipeline == name]
        folder = publish_plans(mine, state / "compiled" / name)
        compiled.append(CompiledPipeline(name, item.root, state,
                                         {plan.name: folder / plan.name / "plan.json" for plan in mine}))
    return compiled


def files_digest(files: dict[str, str]) -> str:
    """sha256 over the relative paths and texts of compiled files (in path order)."""
    digest = hashlib.sha256()
    for relative in sorted(files):
        digest.update(relative.encode("utf-8") + b"\0" + files[relative].encode("utf-8") + b"\0")
    return digest.hexdigest()


def publish_plans(plans: list[Plan], pipeline_dir: Path) -> Path:
    """Write the local files of ``plans`` into ``pipeline_dir/<digest>/`` unless complete there; return it.

    A folder is complete once its manifest exists (written last). Files are only ever written with the
    bytes their digest names, each atomically, so concurrent compiles and runs of one folder are safe.
    """
    from loopc.compiler.cli.compile import MANIFEST, render_plans, write_files
    from loopc.compiler.targets import EmitOptions
    from loopc.runtime.store.artifacts import atomic_write_bytes

    files = render_plans(plans, "local", EmitOptions(root=None))
    digest = files_digest(files)
    folder = pipeline_dir / digest
    try:
        if not (folder / MANIFEST).is_file():
            write_files(folder, files, "local")
        atomic_write_bytes(pipeline_dir / LATEST, f"{digest}\n".encode(), mode=0o644, durable=False)
    except OSError as exc:
        raise LoopcError(f"{exc.filename or folder}: cannot write the compiled plan ({exc.strerror or exc}); "
                         "check that the state folder (pipeline.state_dir) is writable") from None
    return folder


def latest_compiled(state: Path, pipeline: str) -> Path | None:
    """The folder `loopc run` last compiled ``pipeline`` into, if any."""
    try:
        digest = (state / "compiled" / pipeline / LATEST).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    folder = state / "compiled" / pipeline / digest
    return folder if digest and folder.is_dir() else None


def _one_pipeline(compiled: list[CompiledPipeline], spec: str) -> CompiledPipeline:
    if len(compiled) != 1:
        names = ", ".join(c.pipeline for c in compiled)
        raise UsageError(f"'{spec}' holds {len(compiled)} pipelines ({names}); name one pipeline file to run")
    return compiled[0]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loopc.runtime.execution import runs
    from loopc.runtime.execution.executor import run_plan
    from loopc.runtime.execution.progress import print_summary
    from loopc.runtime.execution.step import StepError

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    try:
        run_id = runs.resolve_run_id(args.run_id)
    except runs.RunIdError as exc:
        raise UsageError(str(exc)) from None
    pipeline = _one_pipeline(compile_local(args.spec, args.overrides), args.spec)
    if args.monitor and args.score:
        raise UsageError("give --monitor or --score, not both")
    plan = pipeline.monitor_plan if args.monitor else pipeline.score_plan if args.score else pipeline.train_plan
    if plan is None and args.score:
        raise UsageError(f"pipeline '{pipeline.pipeline}' has no scoring; add a 'scoring:' section or drop --score")
    if plan is None:
        raise UsageError(f"pipeline '{pipeline.pipeline}' has no monitors; add a 'monitors:' section or drop --monitor")
    try:
        result = run_plan(plan, pipeline.root, run_id, jobs=args.jobs)
    except runs.RunConflict as exc:
        raise UsageError(str(exc)) from None
    except (StepError, ValueError) as exc:
        raise LoopcError(str(exc)) from None
    print_summary(result, Console())
    return 0 if result.ok else 1
