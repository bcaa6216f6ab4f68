"""``loopc status DIR``: the state of every job of a plan submitted to Slurm, and why a step failed."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from loopc.compiler.targets.slurm.jobs import (
    FAILED_STATES,
    JobStatus,
    Submission,
    failure_reason,
    load_submission,
    log_tail,
    plan_dirs,
    submission_status,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a compiled Slurm plan folder, or the folder holding several")
    parser.add_argument("--run-id", default=None, help="which submission (default: the latest of each plan)")
    parser.add_argument("--json", action="store_true", help="print the states as JSON")
    parser.add_argument("--tail", type=int, default=10, help="log lines shown for a failed step (default 10)")


def show(console: Console, submission: Submission, statuses: list[JobStatus], tail: int) -> None:
    """The table of steps, a count per state, and for each failed step why and its log tail."""
    counts = Counter(s.state for s in statuses)
    console.print(f"plan [bold]{submission.plan}[/bold], run {submission.run_id} "
                  f"(submitted {submission.submitted_at or 'at an unknown time'}): "
                  + ", ".join(f"{n} {state.lower()}" for state, n in sorted(counts.items())), soft_wrap=True)
    table = Table("step", "job id", "state", "reason", "exit code", show_edge=False, highlight=False)
    for status in statuses:
        style = "red" if status.state in FAILED_STATES else ("green" if status.state == "COMPLETED" else None)
        table.add_row(*(escape(text) for text in (status.step, status.job_id, status.state, status.reason,
                                                  status.exit_code)), style=style)
    console.print(table)
    for status in (s for s in statuses if s.state in FAILED_STATES):
        console.print(f"[red]step {status.step} {status.state.lower()}[/red] (job {status.job_id}, exit code "
                      f"{status.exit_code}): {escape(failure_reason(status))}", soft_wrap=True)
        if status.log:
            console.print(f"  log: {status.log}", markup=False, soft_wrap=True)
            for line in log_tail(status.log, tail):
                console.print(f"  | {line}", markup=False, soft_wrap=True)


def run(args: argparse.Namespace) -> int:
    """Exit code 0 when no step failed, 1 when one did (or Slurm could not be asked)."""
    console = Console(highlight=False)
    results = []
    for plan_dir in plan_dirs(Path(args.dir)):
        submission = load_submission(plan_dir, args.run_id)
        results.append((submission, submission_status(submission)))
    if args.json:
        print(json.dumps([{"plan": s.plan, "run_id": s.run_id, "plan_dir": str(s.plan_dir),
                           "jobs": [dict(j.as_dict(), why=failure_reason(j) if j.state in FAILED_STATES else None)
                                    for j in js]} for s, js in results], indent=2, sort_keys=True))
    else:
        for submission, statuses in results:
            show(console, submission, statuses, args.tail)
    failed = any(j.state in FAILED_STATES for _, js in results for j in js)
    return 1 if failed else 0
