"""The churn loop as Slurm jobs whose state lives only in S3 (moto) and PostgreSQL: the two URLs compiled in."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from test_slurm_engine import EXAMPLE, FAST, make_project, submit, wait_jobs

from loopc.compiler.api import load_project
from loopc.compiler.cli.compile import with_locations
from loopc.compiler.plan.project import plan_project
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.slurm.backend import BACKEND
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION
from loopc.runtime.store.artifacts import open_store

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]


def test_slurm_jobs_keep_artifacts_in_s3_and_the_registry_in_postgres(tmp_path, s3_endpoint, postgres_url,
                                                                        monkeypatch):
    bucket = f"loopc-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_endpoint.split("://", 1)
    pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True).create_dir(bucket)
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, os.environ.get(name, value))
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)  # sbatch hands the submitting environment to the jobs
    for name in ("LOOPC_STORE", "LOOPC_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    store = f"s3://{bucket}/churn"
    root = make_project(tmp_path / "project")
    plans = with_locations(plan_project(load_project(EXAMPLE / "pipeline.yaml", FAST)), store, postgres_url)
    out = root / "compiled"
    for relative, text in BACKEND.render(plans, EmitOptions(python=sys.executable, root=str(root))).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text, encoding="utf-8")

    jobs = submit(out / "churn")
    wait_jobs(jobs.values())
    with open_registry(postgres_url, read_only=True) as reg:
        champion = reg.get_alias("churn_classifier", CHAMPION)
        assert champion is not None and champion.version == 1 and reg.verify() == []
    remote = open_store(store, cache_dir=tmp_path / "reader")
    assert len(remote.keys()) >= 5 and remote.get_record(_run_id(out), "register.churn_classifier")["status"] == "done"
    assert not (root / ".loopc" / "registry.db").exists() and not (root / ".loopc" / "artifacts").exists()


def _run_id(out: Path) -> str:
    from loopc.compiler.targets.slurm.jobs import load_submission

    return load_submission(out / "churn").run_id
