"""The churn loop under a real Airflow 3 scheduler with a LocalExecutor, state only in S3 (moto) and PostgreSQL.

The full stack (tests/airflow_stack.py: api-server, scheduler, dag-processor; own AIRFLOW_HOME, free ports)
starts once for this module. The DAGs are compiled with ``store: s3://…`` and ``registry: postgresql://…`` and
read their source data from the same bucket. Workers get ``LOOPC_ROOT=.``: every task runs in the empty
temporary folder Airflow's BashOperator makes for it (and deletes afterwards), so no local path is shared
between tasks. Runs are triggered and watched through the REST API; the monitor's retrain trigger is a real
TriggerDagRunOperator whose run the scheduler executes.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from pathlib import Path

import pyarrow.fs as pafs
import pytest
import yaml
from airflow_stack import AirflowStack, free_port, stack_environment
from test_e2e_loop import MODEL, generate, make_project

from loopc.compiler.api import load_project
from loopc.compiler.cli.compile import with_locations
from loopc.compiler.plan.project import plan_project
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import BACKEND
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION
from loopc.runtime.store.artifacts import open_store

pytestmark = [pytest.mark.airflow, pytest.mark.slow, pytest.mark.xdist_group("airflow")]

TRAIN, MONITOR = "loopc_churn", "loopc_churn_monitor"
OVERRIDES = ["model.training.epochs=2", "pipeline.resources.retries=0", "pipeline.schedule=null"]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_worker_env(s3_endpoint) -> dict[str, str]:
    """What a worker needs to reach the S3 endpoint: credentials (the environment's, else moto's) and the URL."""
    return {**CREDENTIALS, **{k: os.environ[k] for k in CREDENTIALS if k in os.environ},
            "AWS_ENDPOINT_URL": s3_endpoint}


@pytest.fixture(scope="module")
def stack(airflow_python, s3_worker_env, tmp_path_factory):
    """The running stack (once per module); its workers see only the S3 variables and ``LOOPC_ROOT=.``."""
    base = tmp_path_factory.mktemp("airflow-stack")
    (base / "tmp").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOOPC_", "AIRFLOW"))}
    env.update(stack_environment(base / "home", base / "dags", free_port(), free_port()), **s3_worker_env,
               LOOPC_ROOT=".", TMPDIR=str(base / "tmp"))
    running = AirflowStack(airflow_python, base / "home", base / "dags", env)
    try:
        running.start()
        yield running
    finally:
        running.stop()


def _bucket(s3_env: dict[str, str]) -> tuple[pafs.S3FileSystem, str]:
    bucket = f"loopc-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_env["AWS_ENDPOINT_URL"].split("://", 1)
    fs = pafs.S3FileSystem(endpoint_override=host, scheme=scheme, access_key=s3_env["AWS_ACCESS_KEY_ID"],
                           secret_key=s3_env["AWS_SECRET_ACCESS_KEY"], region=s3_env["AWS_DEFAULT_REGION"],
                           allow_bucket_creation=True)
    fs.create_dir(bucket)
    return fs, bucket


def _upload(fs: pafs.S3FileSystem, folder: Path, target: str) -> None:
    for path in sorted(folder.glob("*.parquet")):
        with path.open("rb") as source, fs.open_output_stream(f"{target}/{path.name}") as sink:
            shutil.copyfileobj(source, sink)


def _remote_sources(project: Path, bucket: str) -> None:
    """Point the dataset and the monitor at the bucket: a worker's folder holds no data."""
    dataset = project / "dataset" / "customers.yaml"
    text = dataset.read_text(encoding="utf-8")
    assert "path: data/customers/" in text
    dataset.write_text(text.replace("path: data/customers/", f"path: s3://{bucket}/customers/"), encoding="utf-8")
    spec_file = project / "pipeline.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["monitors"]["weekly_drift"]["source"]["path"] = f"s3://{bucket}/incoming/*.parquet"
    spec["monitors"]["weekly_drift"]["schedule"] = None
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def _compile(project: Path, dags: Path, store: str, registry: str) -> None:
    plans = with_locations(plan_project(load_project(project / "pipeline.yaml", OVERRIDES)), store, registry)
    for relative, text in BACKEND.render(plans, EmitOptions(python=sys.executable)).items():
        if Path(relative).parts[0].removesuffix(".py") not in (TRAIN, MONITOR):
            continue  # the scoring DAG has a schedule: the scheduler would run it at once
        (dags / relative).parent.mkdir(parents=True, exist_ok=True)
        (dags / relative).write_text(text, encoding="utf-8")


def _finish(stack: AirflowStack, dag_id: str, run_id: str) -> dict[str, str]:
    """Wait for the run; every task's state, asserting it succeeded (with the stack's logs when not)."""
    state = stack.wait_for_run(dag_id, run_id)
    tasks = stack.task_states(dag_id, run_id)
    failed = [task for task, task_state in tasks.items() if task_state == "failed"]
    assert state == "success", f"{dag_id} {run_id}: {tasks}\n{stack.task_logs(dag_id, run_id, failed)}\n{stack.logs()}"
    return tasks


def test_the_scheduler_runs_the_churn_loop_with_state_only_in_s3_and_postgres(stack, s3_worker_env, postgres_url,
                                                                              tmp_path, monkeypatch):
    for name, value in s3_worker_env.items():
        monkeypatch.setenv(name, value)
    fs, bucket = _bucket(s3_worker_env)
    project = make_project(tmp_path / "churn")
    _upload(fs, project / "data" / "customers", f"{bucket}/customers")
    _remote_sources(project, bucket)
    store = f"s3://{bucket}/state"
    _compile(project, stack.dags, store, postgres_url)
    stack.wait_for_dags([TRAIN, MONITOR])

    first = stack.trigger(TRAIN)
    tasks = _finish(stack, TRAIN, first)
    assert set(tasks.values()) == {"success"} and "promote.churn_classifier" in tasks, tasks
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.get_alias(MODEL, CHAMPION).version == 1 and reg.verify() == []
    state = open_store(store, cache_dir=tmp_path / "reader")
    assert {step: state.get_record(first, step)["status"] for step in tasks} == dict.fromkeys(tasks, "done")

    generate(project, "--drifted", "--append")  # new rows arrive: live (incoming) and labelled (training)
    _upload(fs, project / "data" / "incoming", f"{bucket}/incoming")
    fs.delete_dir_contents(f"{bucket}/customers")
    _upload(fs, project / "data" / "customers", f"{bucket}/customers")
    watch = stack.trigger(MONITOR)
    watched = _finish(stack, MONITOR, watch)
    assert stack.xcom(MONITOR, watch, "monitor.weekly_drift")["outputs"]["action"] == "retrain"
    assert watched["trigger.churn"] == "success", watched
    [retrain] = [r["dag_run_id"] for r in stack.runs(TRAIN) if r["dag_run_id"] != first]
    _finish(stack, TRAIN, retrain)

    gate = stack.xcom(TRAIN, retrain, f"gate.{MODEL}")["outputs"]
    assert gate["champion_version"] == 1 and gate["status"] in ("passed", "rejected"), gate
    with open_registry(postgres_url, read_only=True) as reg:
        log = reg.audit_log(MODEL)
        assert reg.verify() == []
    assert any(e.action == "monitor_breach" for e in log)
    compared = [e for e in log if (e.action == "gate_rejected" and e.details.get("run_id") == retrain)
                or (e.action == "shadow" and e.details.get("champion_version") == 1)]
    assert compared, [(e.action, e.details) for e in log]
    assert not list((stack.home.parent / "tmp").glob("airflowtmp*"))  # every task's folder is gone again
