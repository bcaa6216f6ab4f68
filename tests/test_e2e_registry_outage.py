"""The PostgreSQL server stops in the middle of a run: the step fails naming the registry URL, nothing is
half-registered; once the server is back, resuming the run finishes it. A private cluster (not the shared
test server) is stopped and started here."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import engine_missing
from test_e2e_loop import MODEL, SMALL, make_project

from loopc.compiler.cli.run import compile_local
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


class Cluster:
    """A throwaway PostgreSQL cluster on loopback (Debian's binaries), run as the postgres user when root."""

    def __init__(self, folder: Path):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not found:
            engine_missing("no PostgreSQL binaries under /usr/lib/postgresql; ci/postgres-up.sh installs them")
        self.bin, self.data = found[-1].parent, folder / "data"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        self._as_postgres(f"{self.bin}/initdb -D {self.data} -A trust -U postgres")

    def _as_postgres(self, command: str) -> None:
        line = ["su", "postgres", "-s", "/bin/sh", "-c", command] if os.geteuid() == 0 else ["sh", "-c", command]
        subprocess.run(line, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.data} -l {self.data}/log -w -o "
                          f"'-c listen_addresses=127.0.0.1 -p {self.port} -k {self.data}' start")

    def stop(self) -> None:
        self._as_postgres(f"{self.bin}/pg_ctl -D {self.data} -w stop -m fast")


@pytest.fixture
def cluster(tmp_path):
    server = Cluster(Path("/tmp") / f"loopc-outage-{os.getpid()}-{tmp_path.name}")
    server.start()
    yield server
    subprocess.run(["sh", "-c", f"{server.bin}/pg_ctl -D {server.data} status"], capture_output=True, check=False)
    try:
        server.stop()
    except subprocess.CalledProcessError:
        pass  # already stopped
    shutil.rmtree(server.data.parent, ignore_errors=True)


def _run_step(step_file: Path, project: Path, env: dict[str, str]) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "loopc.runtime", "run-step", str(step_file), "--root", str(project),
                           "--run-id", "r1"], env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                          check=False)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_a_registry_outage_fails_the_step_cleanly_and_a_resume_finishes(cluster, tmp_path):
    project = make_project(tmp_path / "churn")
    plan = compile_local(project / "pipeline.yaml", SMALL)[0].train_plan
    steps = json.loads(plan.read_text(encoding="utf-8"))["steps"]
    env = {"LOOPC_REGISTRY": cluster.url}
    assert subprocess.run([sys.executable, "-m", "loopc.compiler.cli.main", "registry", "migrate", "--registry",
                           cluster.url], capture_output=True, check=False).returncode == 0
    register = next(number for number, step in enumerate(steps) if step["kind"] == "register")
    for step in steps[:register]:
        code, summary = _run_step(plan.parent / step["file"], project, env)
        assert code == 0 and summary["status"] in ("done", "cached"), summary

    cluster.stop()
    code, summary = _run_step(plan.parent / steps[register]["file"], project, env)
    assert code == 1 and summary["status"] == "failed"
    assert f"registry {cluster.url}" in summary["message"], summary["message"]

    cluster.start()
    with open_registry(cluster.url, read_only=True) as reg:
        assert reg.versions(MODEL) == [] and reg.verify() == []  # nothing half-registered
    for step in steps:
        code, summary = _run_step(plan.parent / step["file"], project, env)
        assert code == 0 and summary["status"] in ("done", "cached"), summary
    with open_registry(cluster.url, read_only=True) as reg:
        assert [v.version for v in reg.versions(MODEL)] == [1]
        assert reg.get_alias(MODEL, CHAMPION).version == 1 and reg.verify() == []
    assert not (project / ".loopc" / "registry.db").exists()
