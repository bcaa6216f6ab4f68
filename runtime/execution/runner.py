"""Run one step: resume, cache key, upstream outputs, staging, publish, run record."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from loopc.runtime.execution import runs
from loopc.runtime.execution.locations import apply_compiled_locations, compiled_locations
from loopc.runtime.execution.locks import exclusive
from loopc.runtime.execution.ownership import claim_state
from loopc.runtime.execution.step import StepDoc, StepError

RUNTIME_FORMAT = 3
OUTPUTS_FILE = "outputs.json"
# Kinds whose result depends on the registry's current state: never served from the cache.
STATEFUL_KINDS = frozenset({"gate", "register", "shadow", "promote", "monitor", "score"})


class StepFailed(StepError):
    """The step ran and found a problem the user must fix (a data check, a missing champion...)."""


@dataclass
class StepContext:
    """Everything a step function sees: its document, where to write, what came before."""

    doc: StepDoc
    root: Path
    state: Path
    run_id: str
    key: str
    out_dir: Path
    upstream: dict[str, dict[str, Any]]
    log: logging.Logger
    inputs: Any = None  # what the runner fixed before the cache key (a validate step's data Snapshot)
    _registry: Any = field(default=None, repr=False)
    store: Any = field(default=None, repr=False)  # the artifact store (upstream artifacts are read through it)

    @property
    def config(self) -> dict[str, Any]:
        return self.doc.config

    def artifact(self, step_id: str) -> Path:
        """The published artifact folder of an upstream step (a remote store's is fetched into its local cache)."""
        record = self.upstream[step_id]
        if self.store is not None and record.get("key"):
            return Path(self.store.path(record["key"]))
        return self.state / record["artifact"]

    def upstream_of_kind(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The (step id, record) of the nearest upstream step of ``kind`` (direct deps first)."""
        for step_id, record in self.upstream.items():
            if record.get("kind") == kind:
                return step_id, record
        raise StepError(f"step '{self.doc.id}' needs an upstream '{kind}' step; recompile the plan")

    def scratch_dir(self, name: str) -> Path:
        """A per-key folder that survives a crash (checkpoints); removed once the step publishes.

        Only the execution holding the key's lock uses it, so concurrent runs never share one.
        """
        path = scratch_path(self.state, self.key) / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def close(self) -> None:
        """Release the registry connection, if the step opened one."""
        if self._registry is not None:
            self._registry.close()
            self._registry = None

    @property
    def registry(self):
        """The project's registry (opened on first use)."""
        if self._registry is None:
            from loopc.runtime.registry.connect import open_registry, project_registry_url

            self._registry = open_registry(project_registry_url(self.state))
        return self._registry


def scratch_path(state: Path, key: str) -> Path:
    """Where the execution of cache key ``key`` keeps what must survive a crash (checkpoints)."""
    return state / "scratch" / key[:2] / key


StepFunction = Callable[[StepContext], dict[str, Any]]
# kind -> the step's inputs fixed once (an object whose ``digest`` enters the cache key; the step reads it)
InputSnapshot = Callable[[StepDoc, Path], Any]


def _sha256(*parts: str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def is_cacheable(doc: StepDoc) -> bool:
    return doc.cacheable and doc.kind not in STATEFUL_KINDS


def cache_key(doc: StepDoc, upstream: dict[str, dict[str, Any]], input_digest: str, run_id: str) -> str:
    """sha256(fingerprint + upstream keys + input digest); stateful steps also mix in the run id."""
    parts = [f"runtime:{RUNTIME_FORMAT}", doc.fingerprint]
    parts += [f"{dep}={upstream[dep]['key']}" for dep in doc.deps]
    parts.append(f"input={input_digest}")
    if not is_cacheable(doc):
        parts.append(f"run={run_id}:{time.time_ns()}")
    return _sha256(*parts)


def load_upstream(doc: StepDoc, state: Path, run_id: str) -> dict[str, dict[str, Any]]:
    """Records of every dep in this run; StepError names the first that has not finished."""
    upstream: dict[str, dict[str, Any]] = {}
    for dep in doc.deps:
        record = runs.read_record(state, run_id, dep)
        if record is None or record.get("status") not in runs.FINISHED:
            state_word = "failed" if record else "not run"
            raise StepError(
                f"step '{doc.id}' needs '{dep}', which has {state_word} in run '{run_id}'; "
                f"run '{dep}' first with the same --run-id"
            )
        upstream[dep] = record
    return upstream


def skip_reason(upstream: dict[str, dict[str, Any]]) -> str | None:
    """Why this step skips: an upstream step skipped, or asked its dependents to stop."""
    for dep, record in upstream.items():
        if record.get("status") == "skipped":
            return record.get("message") or f"'{dep}' was skipped"
        stop = (record.get("outputs") or {}).get("stop")
        if stop:
            return f"{dep}: {stop}"
    return None


def library_errors() -> tuple[type[BaseException], ...]:
    """Errors of the runtime libraries whose messages tell the user what to fix (not bugs)."""
    from loopc.runtime.data.expressions import ExpressionError
    from loopc.runtime.data.sources import DataError
    from loopc.runtime.evaluate.evaluation import EvaluateError
    from loopc.runtime.features.transforms import FeatureError
    from loopc.runtime.gate.decide import GateError
    from loopc.runtime.gate.shadow import ShadowError
    from loopc.runtime.monitor.profile import ProfileError
    from loopc.runtime.monitor.verdict import MonitorError
    from loopc.runtime.registry.interface import RegistryError
    from loopc.runtime.store.artifacts import StoreError
    from loopc.runtime.train.errors import TrainError

    return (DataError, EvaluateError, ExpressionError, FeatureError, GateError, MonitorError, TrainError,
            ProfileError, RegistryError, ShadowError, StoreError)


# errno values that say the machine, not loopc, is at fault: a full or read-only disk, no permission, no handles
_ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EMFILE,
                                 errno.ENFILE, errno.EIO})


def environment_problem(exc: BaseException, folder: Path | None = None) -> str | None:
    """A user-facing line for an OSError the machine caused, else None. It names the file, or ``folder``
    where the error carries none (a write that fills the disk reports no file name)."""
    if not isinstance(exc, OSError) or exc.errno not in _ENVIRONMENT_ERRNOS:
        return None
    if exc.filename:
        where = f": '{exc.filename}'"
    else:
        where = f" (writing under '{folder}')" if folder is not None else ""
    return f"{exc.strerror or exc}{where}; free space or fix permissions, then run again"


def _step_logger(path: Path, step_id: str, echo: bool) -> tuple[logging.Logger, list[logging.Handler]]:
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(f"loopc.step.{step_id}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handlers: list[logging.Handler] = [logging.FileHandler(path, encoding="utf-8")]
    if echo:
        handlers.append(logging.StreamHandler())
    for handler in handlers:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger, handlers


def _record(doc: StepDoc, run_id: str, status: str, started: float, **extra: Any) -> dict[str, Any]:
    return {
        "step": doc.id, "kind": doc.kind, "plan": doc.plan, "pipeline": doc.pipeline, "run_id": run_id,
        "status": status, "fingerprint": doc.fingerprint, "key": extra.pop("key", None), "artifact": extra.pop("artifact", None),
        "outputs": extra.pop("outputs", {}), "message": extra.pop("message", ""),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "seconds": round(time.time() - started, 3), **extra,
    }


def summary(record: dict[str, Any]) -> dict[str, Any]:
    """The one-line JSON summary ``run-step`` prints last."""
    out = {"step": record["step"], "status": record["status"], "key": record.get("key")}
    out["outputs"] = record.get("outputs") or {}
    if record.get("message"):
        out["message"] = record["message"]
    return out


def run_step(doc: StepDoc, root: str | Path, run_id: str, echo: bool = False) -> dict[str, Any]:
    """Run ``doc`` in run ``run_id`` under project ``root`` and return its record.

    A step already finished in this run is not redone; a cacheable step whose artifact exists is
    "cached"; a step whose upstream was skipped or stopped is "skipped"; a step that raises is
    "failed" (the record says why; StepFailed messages are user-facing, other errors are bugs).
    """
    with compiled_locations(doc):
        return _run_step(doc, Path(root).resolve(), run_id, echo)


def _run_step(doc: StepDoc, root: Path, run_id: str, echo: bool) -> dict[str, Any]:
    state = runs.state_path(root, doc.state_dir)
    claim_state(state, root)
    previous = runs.read_record(state, run_id, doc.id)
    if previous and previous.get("status") in runs.FINISHED:
        return {**previous, "resumed": True}
    started = time.time()
    logger, handlers = _step_logger(runs.log_path(state, run_id, doc.id), doc.id, echo)
    try:
        record = _execute(doc, root, state, run_id, logger, started)
    except StepError as exc:
        logger.error("%s", exc)
        record = _record(doc, run_id, "failed", started, message=str(exc))
    except Exception as exc:  # noqa: BLE001 - one line in the record, the traceback in the log
        logger.error("%s\n%s", exc, traceback.format_exc())
        if isinstance(exc, library_errors()):
            message = f"step '{doc.id}': {exc}"
        elif problem := environment_problem(exc, state):
            message = f"step '{doc.id}': {problem}"
        else:
            message = f"internal error in step '{doc.id}': {type(exc).__name__}: {exc} (traceback in the step log)"
        record = _record(doc, run_id, "failed", started, message=message)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
    runs.write_record(state, run_id, record)
    return record


def worker_rank(environ: dict[str, str]) -> int:
    """This process's rank in a multi-process step (``LOOPC_PROCESS_ID``, else ``SLURM_PROCID`` in an srun step)."""
    for name in ("LOOPC_PROCESS_ID", "SLURM_PROCID"):
        value = environ.get(name, "")
        if value.isdigit() and (name == "LOOPC_PROCESS_ID" or environ.get("SLURM_STEP_NUM_TASKS", "1") != "1"):
            return int(value)
    return 0


def run_worker(doc: StepDoc, root: str | Path, run_id: str) -> dict[str, Any]:
    """Rank > 0 of a multi-process step: its share of the computation only (no lock, record or artifact).

    Rank 0 runs :func:`run_step` and writes everything; this process computes the same cache key (so
    the same scratch folder and checkpoint) and returns once the step function has. When rank 0 will
    not run the function (finished in this run, cached, skipped), neither does this one.
    """
    from loopc.runtime.execution.dispatch import INPUT_SNAPSHOTS, step_function
    from loopc.runtime.store.artifacts import open_store, store_url

    root = Path(root).resolve()
    apply_compiled_locations(doc)
    state = runs.state_path(root, doc.state_dir)
    done = {"step": doc.id, "kind": doc.kind, "status": "worker", "key": None, "outputs": {}}
    previous = runs.read_record(state, run_id, doc.id)
    upstream = load_upstream(doc, state, run_id)
    if (previous and previous.get("status") in runs.FINISHED) or skip_reason(upstream):
        return done
    inputs = INPUT_SNAPSHOTS[doc.kind](doc, root) if doc.kind in INPUT_SNAPSHOTS else None
    key = cache_key(doc, upstream, "" if inputs is None else inputs.digest, run_id)
    store = open_store(store_url(state), cache_dir=state / "cache")
    if is_cacheable(doc) and store.exists(key):
        return {**done, "key": key}
    logger = logging.getLogger(f"loopc.step.{doc.id}.worker")
    if not logger.handlers:  # its lines go to the job's log (stderr); rank 0 keeps the step log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    with tempfile.TemporaryDirectory(prefix="loopc-worker-") as out_dir:
        ctx = StepContext(doc, root, state, run_id, key, Path(out_dir), upstream, logger, inputs=inputs, store=store)
        try:
            step_function(doc.kind)(ctx)
        finally:
            ctx.close()
    return {**done, "key": key}


def _execute(doc: StepDoc, root: Path, state: Path, run_id: str, logger: logging.Logger, started: float):
    from loopc.runtime.execution.dispatch import INPUT_SNAPSHOTS, step_function
    from loopc.runtime.store.artifacts import open_store, store_url

    function = step_function(doc.kind)
    upstream = load_upstream(doc, state, run_id)
    reason = skip_reason(upstream)
    if reason:
        logger.info("skipped: %s", reason)
        return _record(doc, run_id, "skipped", started, message=reason)
    inputs = INPUT_SNAPSHOTS[doc.kind](doc, root) if doc.kind in INPUT_SNAPSHOTS else None
    key = cache_key(doc, upstream, "" if inputs is None else inputs.digest, run_id)
    job = _Job(doc, root, state, run_id, upstream, key,
               open_store(store_url(state), cache_dir=state / "cache"), logger, started, inputs)
    cacheable = is_cacheable(doc)
    cached = job.cached() if cacheable else None
    if cached is not None:
        return cached
    # Every writer holds its key's lock: concurrent runs of one step produce it once (the others
    # wait, then find it cached), and staging folders nobody holds a lock for are safe to delete.
    waiting = f"waiting: another execution is producing key {key} (a concurrent run of the same step)"
    with exclusive(lock_path(state, key), on_wait=lambda: logger.info("%s", waiting)):
        cached = job.cached() if cacheable else None  # it finished while we waited
        if cached is not None:
            return cached
        if job.store.remove_leftovers(key):
            logger.info("removed staging folders a killed execution of key %s left", key)
        return job.produce(function)


def lock_path(state: Path, key: str) -> Path:
    """The lock that one execution of cache key ``key`` holds while it produces the artifact."""
    return state / "locks" / key[:2] / f"{key}.lock"


@dataclass
class _Job:
    """One execution of a step whose cache key is known: take it from the cache, or produce it."""

    doc: StepDoc
    root: Path
    state: Path
    run_id: str
    upstream: dict[str, dict[str, Any]]
    key: str
    store: Any
    log: logging.Logger
    started: float
    inputs: Any = None

    def _record(self, status: str, outputs: dict[str, Any]) -> dict[str, Any]:
        artifact = self.store.path(self.key).relative_to(self.state).as_posix()
        return _record(self.doc, self.run_id, status, self.started, key=self.key, artifact=artifact, outputs=outputs)

    def cached(self) -> dict[str, Any] | None:
        """The "cached" record when the artifact exists, else None."""
        if not self.store.exists(self.key):
            return None
        self.log.info("cached: artifact %s exists", self.key)
        return self._record("cached", json.loads((self.store.path(self.key) / OUTPUTS_FILE).read_text(encoding="utf-8")))

    def produce(self, function: StepFunction) -> dict[str, Any]:
        """Run the step function into a staging folder and publish it; the key's scratch goes afterwards."""
        from loopc.runtime.store.artifacts import atomic_write_json

        self.log.info("running %s (%s) key=%s", self.doc.id, self.doc.kind, self.key)
        with self.store.stage(self.key) as out_dir:
            ctx = StepContext(self.doc, self.root, self.state, self.run_id, self.key, Path(out_dir), self.upstream,
                              self.log, inputs=self.inputs, store=self.store)
            try:
                outputs = function(ctx) or {}
            finally:
                ctx.close()
            atomic_write_json(Path(out_dir) / OUTPUTS_FILE, outputs)
        shutil.rmtree(scratch_path(self.state, self.key), ignore_errors=True)
        self.log.info("done: %s", outputs)
        return self._record("done", outputs)
