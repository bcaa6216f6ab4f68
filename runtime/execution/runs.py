"""Run records: what each step produced in one run (``runs/<run_id>/<step_id>.json``) and which plan it ran."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from loopc.runtime.store.artifacts import atomic_write_json, run_record_store

RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,127}$")
FINISHED = ("done", "cached", "skipped")
RUN_FILE = "run.json"  # planned step ids hold a dot ("train.m"): no step record has this name


class RunIdError(ValueError):
    """A run id (``--run-id`` or ``$LOOPC_RUN_ID``) that is not allowed: a usage error."""


class RunConflict(ValueError):
    """A run id was started with another plan than the one asked to resume it: a usage error."""


def new_run_id() -> str:
    """A sortable, unique run id such as ``20261126T053512Z-3fa9c1``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + secrets.token_hex(3)


def resolve_run_id(run_id: str | None) -> str:
    """The run id to use: the given one, else ``$LOOPC_RUN_ID``, else a new one."""
    return check_run_id(run_id or os.environ.get("LOOPC_RUN_ID") or new_run_id())


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a valid run id, else RunIdError."""
    if not RUN_ID.match(run_id):
        raise RunIdError(
            f"run id '{run_id}' may start with a letter or digit and use only letters, digits and _.:+- "
            "(at most 128 characters)"
        )
    return run_id


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
    """The record of a step in a run, or None when the step has not finished in that run.

    With a remote ``$LOOPC_STORE`` a record this machine lacks is read from the store (another worker wrote it).
    """
    try:
        return json.loads(record_path(state, run_id, step_id).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        store = run_record_store(state)
        return None if store is None else store.get_record(run_id, step_id)


def write_record(state: Path, run_id: str, record: dict[str, Any]) -> Path:
    """Write a step's record atomically; the record names its step in ``record['step']``."""
    path = record_path(state, run_id, record["step"])
    atomic_write_json(path, record)
    store = run_record_store(state)
    if store is not None:
        store.put_record(run_id, record["step"], record)
    return path


def create_once(path: Path, obj: dict[str, Any]) -> dict[str, Any]:
    """Write ``obj`` as JSON to ``path`` unless the file exists; return what the file holds then.

    The file appears complete or not at all (written aside, then hard-linked into place), and of
    several concurrent callers exactly one creates it. ValueError when the file there is not JSON.
    """
    if path.exists():  # the common case (every step claims its state folder): no temporary file
        return json.loads(path.read_text(encoding="utf-8"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(obj, sort_keys=True, indent=2) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(temp, path)
    finally:
        os.unlink(temp)
    return json.loads(path.read_text(encoding="utf-8"))


def pin_plan(state: Path, run_id: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Record in ``runs/<run_id>/run.json`` the plan this run executes; RunConflict if it began with another.

    ``plan`` holds ``plan`` (name), ``digest`` (sha256 of the plan and its step documents) and ``file``.
    """
    path = run_dir(state, run_id) / RUN_FILE
    try:
        pinned = create_once(path, plan)
    except (OSError, ValueError) as exc:
        raise RunConflict(f"{path}: cannot read which plan run '{run_id}' executes ({exc}); "
                          "start a new run (leave out --run-id)") from None
    if (pinned.get("plan"), pinned.get("digest")) != (plan["plan"], plan["digest"]):
        raise RunConflict(
            f"run '{run_id}' was started with another plan (plan '{pinned.get('plan')}', digest "
            f"{str(pinned.get('digest'))[:12]}, from {pinned.get('file')}); resume it with that plan and the same "
            "overrides, or start a new run (leave out --run-id): unchanged steps come from the cache"
        )
    return pinned
