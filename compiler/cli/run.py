"""``loopc run SPEC [OVERRIDES]``: compile for the local target and run the loop here, now."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from loopc.compiler.errors import LoopcError, UsageError


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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pipeline file, or a directory holding one pipeline")
    parser.add_argument("overrides", nargs="*", help="key=value overrides; key=a,b sweeps the model")
    parser.add_argument("--monitor", action="store_true",
                        help="run the monitor plan instead (a drift breach with action retrain retrains)")
    parser.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--run-id", default=None, help="resume or name a run (default: a new id)")


def compile_local(spec_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> list[CompiledPipeline]:
    """load_project + plan_project + local backend into ``ROOT/<state_dir>/compiled/`` (as `loopc compile`)."""
    from loopc.compiler.api import load_project
    from loopc.compiler.cli.compile import compile_plans
    from loopc.compiler.plan.project import plan_project
    from loopc.compiler.targets import EmitOptions

    loaded = load_project(spec_path, overrides)
    plans = plan_project(loaded)
    compiled = []
    for item in {item.spec.pipeline.name: item for item in loaded}.values():
        name, state = item.spec.pipeline.name, item.root / item.spec.pipeline.state_dir
        mine = [plan for plan in plans if plan.pipeline == name]
        compile_plans(mine, "local", state / "compiled", EmitOptions(root=None))
        compiled.append(CompiledPipeline(name, item.root, state,
                                         {plan.name: state / "compiled" / plan.name / "plan.json" for plan in mine}))
    return compiled


def _one_pipeline(compiled: list[CompiledPipeline], spec: str) -> CompiledPipeline:
    if len(compiled) != 1:
        names = ", ".join(c.pipeline for c in compiled)
        raise UsageError(f"'{spec}' holds {len(compiled)} pipelines ({names}); name one pipeline file to run")
    return compiled[0]


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from loopc.runtime.execution.executor import run_plan
    from loopc.runtime.execution.progress import print_summary
    from loopc.runtime.execution.step import StepError

    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, got {args.jobs}")
    pipeline = _one_pipeline(compile_local(args.spec, args.overrides), args.spec)
    plan = pipeline.monitor_plan if args.monitor else pipeline.train_plan
    if plan is None:
        raise UsageError(f"pipeline '{pipeline.pipeline}' has no monitors; add a 'monitors:' section or drop --monitor")
    try:
        result = run_plan(plan, pipeline.root, args.run_id, jobs=args.jobs)
    except (StepError, ValueError) as exc:
        raise LoopcError(str(exc)) from None
    print_summary(result, Console())
    return 0 if result.ok else 1
