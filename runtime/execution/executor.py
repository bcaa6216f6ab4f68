"""The local executor: run a compiled plan's steps in parallel, with cache, resume and a report."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopc.runtime.execution import runs
from loopc.runtime.execution.cleanup import remove_stale_staging
from loopc.runtime.execution.ownership import claim_state
from loopc.runtime.execution.runner import run_step
from loopc.runtime.execution.step import StepDoc, StepError, step_depths, step_from_dict


class PlanError(StepError):
    """A plan file is missing or malformed."""


@dataclass
class PlanRun:
    """The outcome of one plan run: a record per step, the report, and the plan it triggered."""

    plan: dict[str, Any]
    plan_path: Path
    root: Path
    run_id: str
    records: dict[str, dict[str, Any]]
    seconds: float
    report: Path | None = None
    triggered: PlanRun | None = None
    jobs: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def state(self) -> Path:
        return runs.state_path(self.root, self.plan.get("state_dir", ".loopc"))

    @property
    def ok(self) -> bool:
        mine = all(r.get("status") != "failed" for r in self.records.values())
        return mine and (self.triggered is None or self.triggered.ok)

    def statuses(self) -> dict[str, str]:
        return {step_id: record.get("status", "?") for step_id, record in self.records.items()}


@dataclass(frozen=True)
class LoadedPlan:
    """A plan and every step document it names, read once: the run executes exactly these."""

    plan: dict[str, Any]
    docs: dict[str, StepDoc]
    digest: str  # sha256 of plan.json and the step documents, as bytes


def _read_json(path: Path, what: str) -> tuple[Any, bytes]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PlanError(f"{path}: cannot read the {what} ({exc.strerror}); compile it with `loopc compile`") from None
    try:
        return json.loads(data), data
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(path)
        raise PlanError(f"{where}: not valid JSON: {getattr(exc, 'msg', exc)}") from None


def read_plan(path: str | Path) -> LoadedPlan:
    """Read ``plan.json`` and its step documents; PlanError if one is missing or malformed."""
    path = Path(path)
    plan, data = _read_json(path, "plan")
    if not isinstance(plan, dict) or not isinstance(plan.get("steps"), list):
        raise PlanError(f"{path}: not a loopc plan (no 'steps' list); compile it with `loopc compile`")
    digest = hashlib.sha256(data)
    docs = {}
    for entry in plan["steps"]:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not isinstance(entry.get("file"), str):
            raise PlanError(f"{path}: every step needs an 'id' and a 'file'; compile the plan with `loopc compile`")
        step_path = path.parent / entry["file"]
        document, data = _read_json(step_path, "step document")
        docs[entry["id"]] = step_from_dict(document, str(step_path))
        if docs[entry["id"]].id != entry["id"]:
            raise PlanError(f"{step_path}: holds step '{docs[entry['id']].id}', but the plan lists '{entry['id']}' "
                            "there; compile the plan again with `loopc compile`")
        digest.update(b"\0" + entry["file"].encode("utf-8") + b"\0" + data)
    return LoadedPlan(plan, docs, digest.hexdigest())


def default_jobs() -> int:
    """Worker processes: one per core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_width(steps: list[dict[str, Any]]) -> int:
    """How many steps the plan could run at once (largest group of equal depth)."""
    return max(Counter(step_depths(steps).values()).values(), default=1)


def _init_worker(threads: int) -> None:
    """Keep each worker's JAX/BLAS to its share of the cores (set before JAX is imported)."""
    if threads == 1:
        os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, str(threads))


def _run_step_doc(doc: StepDoc, root: str, run_id: str) -> dict[str, Any]:
    """Worker entry point: run one step document of the plan."""
    return run_step(doc, root, run_id)


class _Scheduler:
    """Tracks which steps are ready, running and finished; dependents of a failure are skipped."""

    def __init__(self, loaded: LoadedPlan, root: Path, run_id: str, progress: Any):
        self.steps = {step["id"]: step for step in loaded.plan["steps"]}
        self.order = [step["id"] for step in loaded.plan["steps"]]
        self.docs, self.root, self.run_id, self.progress = loaded.docs, root, run_id, progress
        self.records: dict[str, dict[str, Any]] = {}
        self.running: set[str] = set()

    def ready(self) -> list[str]:
        out = []
        for step_id in self.order:
            if step_id in self.records or step_id in self.running:
                continue
            deps = self.steps[step_id]["deps"]
            if all(dep in self.records for dep in deps):
                out.append(step_id)
        return out

    def blocked_by_failure(self, step_id: str) -> str | None:
        for dep in self.steps[step_id]["deps"]:
            if self.records[dep].get("status") == "failed" or self.records[dep].get("blocked"):
                return dep
        return None

    def args(self, step_id: str) -> tuple[StepDoc, str, str]:
        return self.docs[step_id], str(self.root), self.run_id

    def finish(self, step_id: str, record: dict[str, Any]) -> None:
        self.running.discard(step_id)
        self.records[step_id] = record
        self.progress.finish(step_id, record)

    def skip_blocked(self, step_id: str, dep: str) -> None:
        """Not written to the run record: a resumed run must try this step again."""
        record = {"step": step_id, "kind": self.steps[step_id]["kind"], "status": "skipped", "blocked": True,
                  "message": f"'{dep}' did not succeed", "seconds": 0.0, "outputs": {}}
        self.finish(step_id, record)

    def start(self, step_id: str) -> None:
        self.running.add(step_id)
        self.progress.start(step_id)

    def take_ready(self) -> list[str]:
        """Ready steps to start now; those blocked by a failed dep are skipped on the spot."""
        while True:
            startable, blocked = [], False
            for step_id in self.ready():
                dep = self.blocked_by_failure(step_id)
                if dep:
                    self.skip_blocked(step_id, dep)
                    blocked = True
                else:
                    startable.append(step_id)
            if not blocked:
                return startable


def _run_serial(scheduler: _Scheduler) -> None:
    while True:
        ready = scheduler.take_ready()
        if not ready:
            return
        step_id = ready[0]
        scheduler.start(step_id)
        scheduler.finish(step_id, _run_step_doc(*scheduler.args(step_id)))


def _run_parallel(scheduler: _Scheduler, jobs: int) -> None:
    threads = max(1, default_jobs() // jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures: dict[Future, str] = {}
        while True:
            for step_id in scheduler.take_ready():
                if len(futures) >= jobs:
                    break
                scheduler.start(step_id)
                futures[pool.submit(_run_step_doc, *scheduler.args(step_id))] = step_id
            if not futures:
                return
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for future in done:
                step_id = futures.pop(future)
                scheduler.finish(step_id, _worker_result(scheduler, step_id, future))


def _worker_result(scheduler: _Scheduler, step_id: str, future: Future) -> dict[str, Any]:
    """The worker's record, or a failed one when the worker process itself died (OOM kill, crash)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a dead worker fails its step, not the whole executor
        message = f"the worker process running '{step_id}' died: {type(exc).__name__}: {exc}"
        return {"step": step_id, "kind": scheduler.steps[step_id]["kind"], "status": "failed", "message": message,
                "seconds": 0.0, "outputs": {}}


def _alerts(records: dict[str, dict[str, Any]]) -> list[str]:
    return [f"ALERT from {step_id}: {(r.get('outputs') or {}).get('summary', '')}" for step_id, r in records.items()
            if (r.get("outputs") or {}).get("action") == "alert" and not r.get("resumed")]


def _retrain_requested(records: dict[str, dict[str, Any]]) -> bool:
    """A monitor step of THIS invocation asked to retrain (a resumed verdict already triggered once)."""
    return any((r.get("outputs") or {}).get("action") == "retrain" and not r.get("resumed") for r in records.values())


def _prepare_state(state: Path, root: Path, run_id: str, loaded: LoadedPlan, plan_path: Path) -> None:
    """Claim the state folder, pin the run to this plan, and delete what killed writers left."""
    claim_state(state, root)
    runs.pin_plan(state, run_id, {"plan": loaded.plan.get("plan", "?"), "digest": loaded.digest,
                                  "file": str(plan_path)})
    remove_stale_staging(state)


def run_plan(plan_path: str | Path, root: str | Path | None = None, run_id: str | None = None,
             jobs: int | None = None, progress: Any = None, report: bool = True) -> PlanRun:
    """Run every step of a compiled plan; a monitor verdict of ``retrain`` runs the triggered plan."""
    from loopc.runtime.execution.progress import make_progress

    plan_path = Path(plan_path).resolve()
    loaded = read_plan(plan_path)
    plan = loaded.plan
    root = Path(root or os.environ.get("LOOPC_ROOT") or os.getcwd()).resolve()
    run_id = runs.resolve_run_id(run_id)
    _prepare_state(runs.state_path(root, plan.get("state_dir", ".loopc")), root, run_id, loaded, plan_path)
    requested = jobs
    jobs = max(1, min(jobs or default_jobs(), plan_width(plan["steps"])))
    progress = progress or make_progress()
    started = time.time()
    scheduler = _Scheduler(loaded, root, run_id, progress)
    progress.begin(plan, run_id)
    try:
        _run_serial(scheduler) if jobs == 1 else _run_parallel(scheduler, jobs)
    finally:
        progress.end()
    records = {step_id: scheduler.records[step_id] for step_id in scheduler.order if step_id in scheduler.records}
    result = PlanRun(plan, plan_path, root, run_id, records, round(time.time() - started, 3), jobs=jobs)
    result.notes.extend(_alerts(records))
    if plan.get("kind") == "monitor" and plan.get("triggers") and _retrain_requested(records):
        triggered_path = plan_path.parent.parent / plan["triggers"] / "plan.json"
        result.notes.append(f"drift breach: running plan '{plan['triggers']}'")
        result.triggered = run_plan(triggered_path, root, runs.new_run_id(), jobs=requested, progress=progress,
                                    report=report)  # a run of its own, even under $LOOPC_RUN_ID
    if report:
        from loopc.runtime.execution.report import write_report

        result.report = write_report(result)
    return result
