"""``python -m loopc.runtime run-step STEP.json`` / ``run-plan PLAN.json``: what every target calls."""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from pathlib import Path

from loopc.runtime.data.memory_pool import prefer_jemalloc

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _UsageError(ValueError):
    """The command line asks for something impossible (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        print(f"error: {self.prog}: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m loopc.runtime", description="Run compiled loopc steps and plans.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    step = sub.add_parser("run-step", help="run one step document")
    step.add_argument("step_file", metavar="STEP.json")
    plan = sub.add_parser("run-plan", help="run a compiled local plan (parallel, cached, resumable)")
    plan.add_argument("plan_file", metavar="PLAN.json")
    plan.add_argument("--jobs", type=int, default=None, help="worker processes (default: one per core)")
    for command in (step, plan):
        command.add_argument("--run-id", default=None, help="group steps into one run (default: $LOOPC_RUN_ID or new)")
        command.add_argument("--root", default=None, help="project directory (default: $LOOPC_ROOT or the cwd)")
    return parser


def _root(value: str | None) -> str:
    return value or os.environ.get("LOOPC_ROOT") or os.getcwd()


def run_step_command(args: argparse.Namespace) -> int:
    """Run one step; the last stdout line is its JSON summary."""
    from loopc.runtime.execution import runs
    from loopc.runtime.execution.cleanup import remove_stale_staging
    from loopc.runtime.execution.ownership import claim_state
    from loopc.runtime.execution.runner import run_step, run_worker, summary, worker_rank
    from loopc.runtime.execution.step import load_step

    doc = load_step(args.step_file)
    run_id = runs.resolve_run_id(args.run_id)
    root = Path(_root(args.root)).resolve()
    state = runs.state_path(root, doc.state_dir)
    claim_state(state, root)
    remove_stale_staging(state)
    if worker_rank(os.environ) > 0:  # another process of a multi-process step; rank 0 records it
        record = run_worker(doc, root, run_id)
        print(json.dumps(summary(record), sort_keys=True))
        return EXIT_OK
    record = run_step(doc, root, run_id, echo=True)
    if record["status"] == "failed":
        print(f"error: step {doc.id} failed: {record.get('message', '')}", file=sys.stderr)
    print(json.dumps(summary(record), sort_keys=True))
    return EXIT_FAILED if record["status"] == "failed" else EXIT_OK


def run_plan_command(args: argparse.Namespace) -> int:
    """Run a plan with the local executor; prints the summary table and the report path."""
    from rich.console import Console

    from loopc.runtime.execution.executor import run_plan
    from loopc.runtime.execution.progress import print_summary

    if args.jobs is not None and args.jobs < 1:
        raise _UsageError(f"--jobs must be at least 1, got {args.jobs}")
    result = run_plan(args.plan_file, _root(args.root), args.run_id, jobs=args.jobs)
    print_summary(result, Console())
    return EXIT_OK if result.ok else EXIT_FAILED


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Errors in how the command was called: a bad run id, a run id resumed with another plan."""
    from loopc.runtime.execution.runs import RunConflict, RunIdError

    return (_UsageError, RunConflict, RunIdError)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message tells the user what to fix (shown as one line, no traceback)."""
    from loopc.runtime.execution.step import StepError
    from loopc.runtime.registry.interface import RegistryError
    from loopc.runtime.store.artifacts import StoreError

    return (StepError, StoreError, RegistryError, ValueError, OSError)


def main(argv: list[str] | None = None) -> int:
    prefer_jemalloc()  # before anything loads Arrow
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    handler = run_step_command if args.command == "run-step" else run_plan_command
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - users get one line; LOOPC_DEBUG=1 shows the traceback
        if os.environ.get("LOOPC_DEBUG"):
            traceback.print_exc()
        if isinstance(exc, _usage_errors()):
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(exc, _user_errors()):
            print(f"error: {exc}", file=sys.stderr)
        else:
            print(f"internal error (a bug in loopc, please report it; LOOPC_DEBUG=1 shows the traceback): "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
