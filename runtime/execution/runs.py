"""Run records: what each step produced in one run (``runs/<run_id>/<step_id>.json``)."""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from loopc.runtime.store.artifacts import atomic_write_json

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")
FINISHED = ("done", "cached", "skipped")


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261126T053512Z-3fa9c1``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def resolve_run_id(run_id: str | None) -> str:
    """The run id to use: the given one, else ``$LOOPC_RUN_ID``, else a new one."""
    chosen = run_id or os.environ.get("LOOPC_RUN_ID") or new_run_id()
    if not RUN_ID.match(chosen):
        raise ValueError(
            f"run id '{chosen}' may use only letters, digits and _.:+- (at most 128 characters)"
        )
    return chosen


def state_path(root: str | Path, state_dir: str) -> Path:
    """The runtime state folder of a project: ``ROOT/<state_dir>``."""
    return Path(root) / state_dir


def run_dir(state: Path, run_id: str) -> Path:
    """The folder of one run's records, logs and report."""
    return state / "runs" / run_id


def record_path(state: Path, run_id: str, step_id: str) -> Path:
    return run_dir(state, run_id) / f"{step_id}.json"


def log_path(state: Path, run_id: str, step_id: str) -> Path:
    return run_dir(state, run_id) / "logs" / f"{step_id}.log"


def read_record(state: Path, run_id: str, step_id: str) -> dict[str, Any] | None:
    """The record of a step in a run, or None when the step has not finished in that run."""
    try:
        return json.loads(record_path(state, run_id, step_id).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def write_record(state: Path, run_id: str, record: dict[str, Any]) -> Path:
    """Write a step's record atomically; the record names its step in ``record['step']``."""
    path = record_path(state, run_id, record["step"])
    atomic_write_json(path, record)
    return path


def run_records(state: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """Every step record of a run, by step id."""
    records: dict[str, dict[str, Any]] = {}
    folder = run_dir(state, run_id)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(record, dict) and "step" in record:
            records[record["step"]] = record
    return records


def list_runs(state: Path) -> list[str]:
    """Run ids under a state folder, oldest first."""
    folder = state / "runs"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
