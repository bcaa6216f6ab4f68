"""The full Airflow 3 stack for tests: api-server, scheduler (LocalExecutor) and dag-processor, each our own process.

``AirflowStack.start`` migrates a private SQLite metadata DB under its own ``AIRFLOW_HOME``, starts the three
components on free loopback ports (the REST API and the scheduler's log server) and waits for the API's health
check; ``stop`` ends each component's process group by the PID it started, also when a test failed. Runs are
driven through the REST API (``/api/v2``), never the slow ``airflow`` CLI (3-5 s per call).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JWT = "ci-only-not-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
COMPONENTS = ("api-server", "scheduler", "dag-processor")
FINISHED = ("success", "failed")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stack_environment(home: Path, dags: Path, api_port: int, log_port: int) -> dict[str, str]:
    """Airflow's settings for one private stack (read by every component at import time)."""
    return {
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor", "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__API__HOST": "127.0.0.1", "AIRFLOW__API__PORT": str(api_port), "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(log_port),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True", "AIRFLOW__API_AUTH__JWT_SECRET": JWT,
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore",
    }


@dataclass
class AirflowStack:
    """One running stack: its REST base URL, its folders and the PIDs of the processes it started."""

    python: str
    home: Path
    dags: Path
    env: dict[str, str]
    api: str = ""
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, timeout_s: float = 240) -> None:
        """Migrate the metadata DB, start the components, wait until the API answers."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.dags.mkdir(parents=True, exist_ok=True)
        migrate = subprocess.run([self.python, "-m", "airflow", "db", "migrate"], env=self.env, capture_output=True,
                                 text=True, timeout=timeout_s, check=False)
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed: {migrate.stderr[-3000:]}")
        for component in COMPONENTS:
            with (self.home / f"{component}.log").open("wb") as log:
                process = subprocess.Popen([self.python, "-m", "airflow", component], env=self.env, stdout=log,
                                           stderr=subprocess.STDOUT, start_new_session=True)
            self.processes[component] = process
        self.api = f"http://127.0.0.1:{self.env['AIRFLOW__API__PORT']}/api/v2"
        self._wait(lambda: self._health(), timeout_s, "the API server's health check")

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM each component's process group (by the PID started), SIGKILL what is left after ``grace_s``."""
        for process in self.processes.values():
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(process.pid, signal.SIGKILL)  # the group's children (task workers, serve-logs) too
            process.wait()
        self.processes.clear()

    def logs(self) -> str:
        """The tail of every component's log (for a failure message)."""
        return "\n".join(f"--- {c}\n{(self.home / f'{c}.log').read_text(errors='replace')[-3000:]}"
                         for c in COMPONENTS if (self.home / f"{c}.log").is_file())

    # ------------------------------------------------------------------ REST API

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.api + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def _health(self) -> bool:
        try:
            self.request("GET", "/monitor/health")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return True

    def wait_for_dags(self, dag_ids: list[str], timeout_s: float = 120) -> None:
        """Until the dag-processor has parsed every DAG in ``dag_ids``, none paused."""
        def ready() -> bool:
            found = {d["dag_id"]: d for d in self.request("GET", "/dags?limit=100")["dags"]}
            return all(name in found and not found[name]["is_paused"] for name in dag_ids)
        self._wait(ready, timeout_s, f"DAGs {dag_ids} to be parsed and unpaused")

    def trigger(self, dag_id: str) -> str:
        """Start a manual run of ``dag_id`` now; its run id."""
        return self.request("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}})["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        return self.request("GET", f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]

    def wait_for_run(self, dag_id: str, run_id: str, timeout_s: float = 240) -> str:
        """Poll until the run succeeded or failed; its final state."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}"
        self._wait(lambda: self.request("GET", path)["state"] in FINISHED, timeout_s, f"run {run_id} of {dag_id}")
        return self.request("GET", path)["state"]

    def task_logs(self, dag_id: str, run_id: str, task_ids: list[str]) -> str:
        """The tail of each named task's log files of one run (for a failure message)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}"
        return "\n".join(f"--- {path.relative_to(folder)}\n{path.read_text(errors='replace')[-6000:]}"
                         for task in task_ids for path in sorted(folder.glob(f"task_id={task}/*.log")))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        path = f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances?limit=100"
        return {t["task_id"]: t["state"] for t in self.request("GET", path)["task_instances"]}

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        """The task's ``return_value`` XCom (run-step's JSON summary line for a loopc task), decoded."""
        path = (f"/dags/{dag_id}/dagRuns/{urllib.request.quote(run_id, safe='')}/taskInstances/"
                f"{urllib.request.quote(task_id, safe='')}/xcomEntries/return_value")
        value = self.request("GET", path)["value"]
        return json.loads(value) if isinstance(value, str) else value

    def _wait(self, done, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what}\n{self.logs()}")
            if any(process.poll() is not None for process in self.processes.values()):
                raise RuntimeError(f"an Airflow component exited while waiting for {what}\n{self.logs()}")
            time.sleep(1)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)  # start_new_session: the group id is the PID we started

