"""Runs INSIDE the Airflow venv: load compiled DAGs with a real DagBag, run them with dag.test(), report JSON.

    $LOOPC_AIRFLOW_PYTHON tests/airflow_driver.py JOB.json

The caller sets AIRFLOW_HOME, AIRFLOW__CORE__DAGS_FOLDER, ... before starting this process (Airflow
reads its configuration at import time). JOB.json:

    {"dags_folder": DIR, "out": FILE, "migrate": true,
     "runs": [{"name": N, "dag_id": D, "env": {VAR: VALUE}, "before": [[argv...], ...],
               "no_retries": true}]}

FILE receives {"warnings": [...], "import_errors": {...}, "dags": {dag_id: {...}}, "runs": {N: {...}},
"timings": {...}}. Only the standard library and Airflow are imported here (never loopc).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from typing import Any


def load_bag(folder: str) -> tuple[Any, list[dict[str, Any]]]:
    """A DagBag of ``folder`` and every warning raised while its files were imported."""
    from airflow.dag_processing.dagbag import DagBag

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bag = DagBag(dag_folder=folder)
    found = [{"category": w.category.__name__, "file": w.filename, "line": w.lineno, "message": str(w.message)}
             for w in caught]
    return bag, found


def describe_task(dag: Any, task: Any) -> dict[str, Any]:
    """What a test needs to know about one task, with bash_command rendered as Airflow renders it."""
    info: dict[str, Any] = {
        "operator": type(task).__name__, "upstream": sorted(task.upstream_task_ids),
        "group": task.task_group.group_id if task.task_group else None, "retries": task.retries,
        "retry_delay_s": task.retry_delay.total_seconds() if task.retry_delay else None,
        "execution_timeout_s": task.execution_timeout.total_seconds() if task.execution_timeout else None,
        "pool": task.pool, "queue": task.queue, "priority_weight": task.priority_weight, "owner": task.owner,
        "doc_md": task.doc_md,
    }
    if type(task).__name__ == "BashOperator":
        context = {"loopc": dag.user_defined_macros["loopc"]}
        info["command"] = task.render_template(task.bash_command, context, jinja_env=dag.get_template_env())
    if type(task).__name__ == "TriggerDagRunOperator":
        info["trigger_dag_id"] = task.trigger_dag_id
    return info


def describe_dag(dag: Any) -> dict[str, Any]:
    return {
        "fileloc": dag.fileloc, "description": dag.description, "doc_md": dag.doc_md,
        "schedule": getattr(dag.timetable, "expression", None) or repr(dag.timetable),
        "tags": sorted(dag.tags), "catchup": dag.catchup, "max_active_runs": dag.max_active_runs,
        "tasks": {task.task_id: describe_task(dag, task) for task in dag.tasks},
    }


def run_dag(bag: Any, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one DAG with dag.test() and collect task states, XComs and DAG runs it created elsewhere."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    for argv in spec.get("before", []):
        subprocess.run(argv, check=True, stdout=sys.stderr)
    os.environ.update(spec.get("env", {}))
    dag = bag.dags[spec["dag_id"]]
    if spec.get("no_retries"):  # a failure test must not wait out retry_delay
        for task in dag.tasks:
            task.retries = 0
    started = time.perf_counter()
    dr = dag.test()
    result: dict[str, Any] = {"state": str(dr.state), "run_id": dr.run_id, "seconds": time.perf_counter() - started}
    with create_session() as session:
        tis = dr.get_task_instances(session=session)
        result["tasks"] = {ti.task_id: str(ti.state) for ti in tis}
        rows = session.execute(select(XComModel.task_id, XComModel.value).where(
            XComModel.dag_id == dag.dag_id, XComModel.run_id == dr.run_id, XComModel.key == "return_value"))
        result["xcom"] = {task_id: value for task_id, value in rows}
        runs = session.scalars(select(DagRun).where(DagRun.dag_id != dag.dag_id)).all()
        result["other_runs"] = sorted([run.dag_id, run.run_id, str(run.triggered_by), str(run.state)] for run in runs)
    return result


def main(job_file: str) -> int:
    with open(job_file) as handle:
        job = json.load(handle)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    if job.get("migrate"):
        from airflow.utils.db import upgradedb

        upgradedb()
        timings["migrate_s"] = time.perf_counter() - started
    mark = time.perf_counter()
    bag, caught = load_bag(job["dags_folder"])
    timings["dagbag_s"] = time.perf_counter() - mark
    report: dict[str, Any] = {
        "warnings": caught, "import_errors": {k: v for k, v in bag.import_errors.items()},
        "dags": {dag_id: describe_dag(dag) for dag_id, dag in sorted(bag.dags.items())}, "runs": {},
    }
    for spec in job.get("runs", []):
        try:
            report["runs"][spec["name"]] = run_dag(bag, spec)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails with the message
            report["runs"][spec["name"]] = {"state": "driver-error", "error": f"{type(exc).__name__}: {exc}"}
    timings["total_s"] = time.perf_counter() - started
    report["timings"] = timings
    with open(job["out"], "w") as handle:
        json.dump(report, handle, indent=1, default=str)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
