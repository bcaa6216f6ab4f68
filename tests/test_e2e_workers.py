"""Many machines, one truth: the churn training plan with every step in its own empty working directory.

Each step runs as ``python -m loopc.runtime run-step`` in a fresh folder holding only the project's
spec and source data; artifacts and run records pass only through the S3 endpoint ($LOOPC_STORE) and
the registry only through PostgreSQL ($LOOPC_REGISTRY). Real moto S3 server, real PostgreSQL, real JAX.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from test_e2e_loop import MODEL, SMALL, make_project

from loopc.compiler.cli.run import compile_local
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION
from loopc.runtime.store.artifacts import open_store

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The churn example (small data) and its compiled training plan, copied out of the project."""
    base = tmp_path_factory.mktemp("workers")
    project = make_project(base / "churn")
    plan = compile_local(project / "pipeline.yaml", SMALL)[0].train_plan
    shutil.copytree(plan.parent, base / "plan")
    shutil.rmtree(project / ".loopc")
    return project, base / "plan"


@pytest.fixture
def services(s3_endpoint, postgres_url, monkeypatch) -> dict[str, str]:
    """Environment of a worker: a fresh bucket as LOOPC_STORE, a fresh database as LOOPC_REGISTRY (the test
    process gets the endpoint and credentials too, to look into the store)."""
    bucket = f"loopc-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_endpoint.split("://", 1)
    pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True).create_dir(bucket)
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    env = {**env, **{k: v for k, v in os.environ.items() if k in env}, "AWS_ENDPOINT_URL": s3_endpoint}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return {**env, "AWS_ENDPOINT_URL": s3_endpoint, "LOOPC_STORE": f"s3://{bucket}/churn",
            "LOOPC_REGISTRY": postgres_url}


def _worker(project: Path, where: Path) -> Path:
    """An empty working directory with only the project's spec and source data (no state folder)."""
    shutil.copytree(project, where, ignore=shutil.ignore_patterns(".loopc", "__pycache__"))
    return where


def _run_step(plan: Path, step: dict, worker: Path, run_id: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "loopc.runtime", "run-step", str(plan / step["file"]), "--root", str(worker),
               "--run-id", run_id]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=600,
                          check=False)


def _steps(plan: Path) -> list[dict]:
    return json.loads((plan / "plan.json").read_text(encoding="utf-8"))["steps"]


def _run_all(project, plan, base: Path, run_id: str, env) -> dict[str, dict]:
    summaries = {}
    for number, step in enumerate(_steps(plan)):
        done = _run_step(plan, step, _worker(project, base / f"{run_id}-{number}"), run_id, env)
        assert done.returncode == 0, f"{step['id']}: {done.stdout}\n{done.stderr}"
        summaries[step["id"]] = json.loads(done.stdout.strip().splitlines()[-1])
    return summaries


def test_each_step_in_its_own_empty_folder_shares_state_only_through_s3_and_postgres(compiled, services, tmp_path):
    project, plan = compiled
    first = _run_all(project, plan, tmp_path, "w1", services)
    assert {s["status"] for s in first.values()} == {"done"}, first
    with open_registry(services["LOOPC_REGISTRY"], read_only=True) as reg:
        assert reg.get_alias(MODEL, CHAMPION).version == 1 and reg.verify() == []
    store = open_store(services["LOOPC_STORE"], cache_dir=tmp_path / "reader")
    cacheable = [s["id"] for s in _steps(plan) if s["kind"] in ("validate", "split", "features", "train", "evaluate")]
    assert {first[step]["key"] for step in cacheable} <= set(store.keys())
    assert store.get_record("w1", "register." + MODEL)["status"] == "done"
    for number in range(len(first)):  # nothing but the state folder each worker made for itself
        assert not (tmp_path / f"w1-{number}" / ".loopc" / "artifacts").exists()

    again = _run_all(project, plan, tmp_path, "w2", services)
    assert all(again[step]["status"] == "cached" for step in cacheable), again
    with open_registry(services["LOOPC_REGISTRY"], read_only=True) as reg:
        assert len(reg.versions(MODEL)) == 1 and reg.verify() == []


def test_a_step_killed_mid_upload_is_redone_alone_on_resume(compiled, services, tmp_path):
    project, plan = compiled
    steps = _steps(plan)
    train = next(number for number, step in enumerate(steps) if step["kind"] == "train")
    for number, step in enumerate(steps[:train]):
        assert _run_step(plan, step, _worker(project, tmp_path / f"a{number}"), "k1", services).returncode == 0
    killed = _run_step(plan, steps[train], _worker(project, tmp_path / "killed"), "k1",
                       {**services, "LOOPC_TEST_KILL_AT": "store.after_upload"})
    assert killed.returncode == -9, killed.stderr
    store = open_store(services["LOOPC_STORE"], cache_dir=tmp_path / "reader")
    before = [store.get_record("k1", s["id"])["started_at"] for s in steps[:train]]
    partial = store.leftover_keys()
    assert len(partial) == 1 and not store.exists(partial[0]) and store.get_record("k1", steps[train]["id"]) is None
    resumed = _run_all(project, plan, tmp_path, "k1", services)
    assert resumed[steps[train]["id"]]["status"] == "done" and resumed[steps[train]["id"]]["key"] == partial[0]
    assert all(resumed[step["id"]]["status"] == "done" for step in steps[:train])  # from the store's records
    assert [store.get_record("k1", s["id"])["started_at"] for s in steps[:train]] == before  # not redone
    assert store.exists(partial[0])
    with open_registry(services["LOOPC_REGISTRY"], read_only=True) as reg:
        assert reg.get_alias(MODEL, CHAMPION).version == 1 and reg.verify() == []
