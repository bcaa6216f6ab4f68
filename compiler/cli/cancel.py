"""``loopc cancel DIR``: scancel the jobs of a submitted plan that are still pending or running."""

from __future__ import annotations

import argparse
from pathlib import Path

from loopc.compiler.targets.slurm.jobs import (
    FINAL_STATES,
    SlurmError,
    load_submission,
    plan_dirs,
    slurm_command,
    submission_status,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a compiled Slurm plan folder, or the folder holding several")
    parser.add_argument("--run-id", default=None, help="which submission (default: the latest of each plan)")


def run(args: argparse.Namespace) -> int:
    """Cancel what has not finished; finished jobs are left alone."""
    for plan_dir in plan_dirs(Path(args.dir)):
        submission = load_submission(plan_dir, args.run_id)
        active = [s for s in submission_status(submission) if s.state not in FINAL_STATES and s.source != "none"]
        if not active:
            print(f"plan {submission.plan}, run {submission.run_id}: nothing to cancel, every job has finished")
            continue
        ids = [s.job_id for s in active]
        done = slurm_command(["scancel", *ids])
        if done.returncode != 0:
            raise SlurmError(f"scancel {' '.join(ids)} failed: {done.stderr.strip()}")
        print(f"plan {submission.plan}, run {submission.run_id}: cancelled {len(ids)} jobs: "
              + ", ".join(f"{s.step} ({s.job_id})" for s in active))
    return 0
