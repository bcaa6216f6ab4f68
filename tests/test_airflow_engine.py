"""The Airflow target on a real Apache Airflow 3: DagBag import, dag.test() runs, failure, drift-triggered retraining.

Everything runs in ONE driver process per session (tests/airflow_driver.py, inside the Airflow venv):
the first dag.test() pays ~8 s of Execution-API warm-up, later runs under a second. Tasks call this
process's interpreter (loopc's venv) through EmitOptions.python; Airflow and loopc never share a venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_airflow_safety import MARKER, hostile_tree
from test_airflow_support import ARGV_DUMP, compile_into, echo_plans
from test_plan_support import EXAMPLES, compose_tree, example_plans, spec_from_tree

from loopc.compiler.plan.pipeline import Plan, plan_pipeline
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import dag_id

pytestmark = [pytest.mark.airflow, pytest.mark.xdist_group("airflow")]

DRIVER = Path(__file__).resolve().parent / "airflow_driver.py"
GENERATE = EXAMPLES / "churn" / "generate.py"
JWT = "ci-only-not-secret-0123456789abcdef0123456789abcdef0123456789abcdef"
HOSTILE_TEXT = {
    "description": f"{{{{ 7 * 7 }}}} ''' \"\"\" $(touch {MARKER}) `touch {MARKER}` {{% raw %}} %s \\ \n ends.md",
    "owner": "o'wner\"; $(touch PWNED)", "intended_use": "{% endraw %}{# #}\u2028🙂" * 300,
    "tags": ["{{ t }}", "'$(touch PWNED)'"], "secret_name": "db'pass", "secret_ref": "{{ conn.x.password }}",
    "dataset_description": "\x00\r\n'''", "source_path": "data/customers/*.parquet",
    "column_description": "}}{{", "feature_description": "%(x)s", "model_description": "`id`",
    "monitor_path": "data/incoming/*.parquet",
}


def _python(command: list[str]) -> list[str]:
    return [sys.executable, *command]


def _generate(root: Path, *flags: str) -> list[str]:
    return _python([str(GENERATE), "--root", str(root), *flags])  # 4000 rows: enough for the fairness gate


def _copy_into_incoming(root: Path) -> list[str]:
    code = ("import pathlib, shutil, sys; r = pathlib.Path(sys.argv[1]); (r / 'data/incoming').mkdir(parents=True);"
            "[shutil.copy(p, r / 'data/incoming' / p.name) for p in (r / 'data/customers').glob('*.parquet')]")
    return _python(["-c", code, str(root)])


def _corrupt(root: Path) -> None:
    """Training data whose tenure is negative: the schema check of validate.customers fails."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    for path in (root / "data" / "customers").glob("*.parquet"):
        table = pq.read_table(path)
        index = table.schema.get_field_index("tenure_months")
        pq.write_table(table.set_column(index, "tenure_months", pc.negate(table["tenure_months"])), path)


def _plans() -> dict[str, list[Plan]]:
    tree = hostile_tree(HOSTILE_TEXT)
    tree["pipeline"]["name"] = "hostile"
    hostile_spec, spec_hash = spec_from_tree(tree)
    hostile = plan_pipeline(hostile_spec, spec_hash=spec_hash)
    sweep_tree = compose_tree(EXAMPLES / "churn" / "pipeline.yaml", {"model": "mlp"})
    sweep_tree["pipeline"]["name"] = "churn_sweep"
    sweep_spec, sweep_hash = spec_from_tree(sweep_tree)
    sweep = plan_pipeline(sweep_spec, spec_hash=sweep_hash)
    return {"churn": example_plans("churn"), "demand": example_plans("demand"), "hostile": hostile, "sweep": sweep,
            "echo_ok": echo_plans("echo_ok"), "echo_fail": echo_plans("echo_fail", fail="echo.b")[:1],
            "echo_stop": echo_plans("echo_stop", stop="echo.b")[:1],
            "echo_calm": echo_plans("echo_calm", action="none")}


def _runs(roots: dict[str, Path]) -> list[dict[str, Any]]:
    echo, ok, bad = ({"LOOPC_ROOT": str(roots[k])} for k in ("echo", "ok", "bad"))
    return [
        {"name": "echo_ok", "dag_id": "loopc_echo_ok", "env": echo},
        {"name": "echo_fail", "dag_id": "loopc_echo_fail", "env": echo},
        {"name": "echo_stop", "dag_id": "loopc_echo_stop", "env": echo},
        {"name": "echo_monitor", "dag_id": "loopc_echo_ok_monitor", "env": echo},
        {"name": "echo_calm", "dag_id": "loopc_echo_calm_monitor", "env": echo},
        {"name": "churn_ok", "dag_id": "loopc_churn", "env": ok},
        {"name": "churn_bad", "dag_id": "loopc_churn", "env": bad, "no_retries": True},
        {"name": "churn_calm", "dag_id": "loopc_churn_monitor", "env": ok, "before": [_copy_into_incoming(roots["ok"])]},
        {"name": "churn_score", "dag_id": "loopc_churn_score", "env": ok},
        {"name": "churn_drift", "dag_id": "loopc_churn_monitor", "env": ok,
         "before": [_python(["-c", "import shutil, sys; shutil.rmtree(sys.argv[1])", str(roots["ok"] / "data/incoming")]),
                    _generate(roots["ok"], "--drifted")]},
    ]


@pytest.fixture(scope="module")
def engine(airflow_python, tmp_path_factory):
    """Compile everything, prepare project roots, run the driver once; its JSON report plus the inputs."""
    tmp = tmp_path_factory.mktemp("airflow")
    dags, home = tmp / "dags", tmp / "home"
    dump = tmp / "bin" / "python"
    dump.parent.mkdir()
    dump.write_text(ARGV_DUMP)
    dump.chmod(0o755)
    plans = _plans()
    for name, group in plans.items():
        python = str(dump) if name == "hostile" else sys.executable
        compile_into(dags, group, EmitOptions(python=python))
    roots = {name: tmp / f"root_{name}" for name in ("echo", "ok", "bad")}
    for name in ("ok", "bad"):
        subprocess.run(_generate(roots[name]), check=True, capture_output=True)
    roots["echo"].mkdir()
    _corrupt(roots["bad"])
    job = {"dags_folder": str(dags), "out": str(tmp / "report.json"), "migrate": True, "runs": _runs(roots)}
    (tmp / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False", AIRFLOW__API_AUTH__JWT_SECRET=JWT,
               AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False", PYTHONWARNINGS="ignore::DeprecationWarning:starlette")
    env.pop("LOOPC_ROOT", None)
    log = tmp / "driver.log"
    with log.open("w") as out:
        done = subprocess.run([airflow_python, str(DRIVER), str(tmp / "job.json")], env=env, stdout=out,
                              stderr=subprocess.STDOUT, timeout=900)
    assert done.returncode == 0, f"driver failed; last lines:\n{log.read_text()[-4000:]}"
    report = json.loads((tmp / "report.json").read_text())
    print(f"airflow driver timings: {report['timings']}")
    return {"report": report, "plans": plans, "roots": roots, "dags": dags, "dump": dump, "tmp": tmp, "log": log}


def _run(engine, name: str) -> dict[str, Any]:
    run = engine["report"]["runs"][name]
    assert run["state"] != "driver-error", run.get("error")
    return run


def test_every_compiled_dag_imports_without_errors_or_warnings(engine):
    report = engine["report"]
    assert report["import_errors"] == {}
    expected = {dag_id(plan.name) for group in engine["plans"].values() for plan in group}
    assert set(report["dags"]) == expected
    assert report["warnings"] == []  # recorded while the DagBag imported the compiled files, nothing else


def test_tasks_edges_and_settings_match_the_plans(engine):
    for group in engine["plans"].values():
        for plan in group:
            dag = engine["report"]["dags"][dag_id(plan.name)]
            steps = {step.id: step for step in plan.steps}
            bash = {t: info for t, info in dag["tasks"].items() if info["operator"] == "BashOperator"}
            assert sorted(bash) == sorted(steps)
            for step_id, info in bash.items():
                step = steps[step_id]
                assert info["upstream"] == sorted(step.deps) and info["group"] == step.stage
                assert info["retries"] == step.resources.retries
                assert info["execution_timeout_s"] == step.resources.time_s
                assert info["retry_delay_s"] == step.resources.retry_delay_s
            assert dag["max_active_runs"] == 1 and dag["catchup"] is False


def test_monitor_dag_wires_short_circuit_to_trigger(engine):
    assert engine["report"]["dags"]["loopc_churn"]["schedule"] == "0 3 * * 1"
    assert engine["report"]["dags"]["loopc_churn_monitor"]["schedule"] == "0 * * * *"
    tasks = engine["report"]["dags"]["loopc_churn_monitor"]["tasks"]
    assert tasks["retrain_needed"]["upstream"] == ["monitor.weekly_drift"]
    assert tasks["trigger.churn"]["upstream"] == ["retrain_needed"]
    assert tasks["trigger.churn"]["trigger_dag_id"] == "loopc_churn"


def test_hostile_spec_imports_and_its_commands_run_nothing(engine):
    dag = engine["report"]["dags"]["loopc_hostile"]
    assert dag["description"] == hostile_tree(HOSTILE_TEXT)["pipeline"]["description"]
    assert "{{ t }}" in dag["tags"] and dag["doc_md"].count("🙂") == 300
    scratch = engine["tmp"] / "scratch"
    scratch.mkdir()
    for task_id, info in dag["tasks"].items():
        if info["operator"] != "BashOperator":
            continue
        env = {"PATH": os.environ["PATH"], "ARGV_DUMP": str(scratch / "argv"),
               "AIRFLOW_CTX_DAG_RUN_ID": "manual__$(touch PWNED)", "LOOPC_ROOT": "/r"}
        subprocess.run(["bash", "-c", info["command"]], cwd=scratch, env=env, check=True)
        argv = (scratch / "argv").read_text().split("\0")[:-1]
        assert argv[3] == str(engine["dags"] / "loopc_hostile" / "steps" / f"{task_id}.json")
        assert argv[4:] == ["--root", "/r", "--run-id", "manual__$(touch PWNED)"]
    assert not list(engine["tmp"].rglob(MARKER))


def test_echo_dag_runs_every_step_with_the_airflow_run_id(engine):
    run = _run(engine, "echo_ok")
    assert run["state"] == "success" and set(run["tasks"].values()) == {"success"}
    summary = json.loads(run["xcom"]["echo.c"])
    assert summary["step"] == "echo.c" and summary["status"] == "done"
    record = engine["roots"]["echo"] / ".loopc" / "runs" / run["run_id"] / "echo.c.json"
    assert record.exists(), "the runtime recorded the step under the Airflow run id"


def test_failed_step_fails_the_run_and_its_downstream(engine):
    run = _run(engine, "echo_fail")
    assert run["state"] == "failed"
    assert run["tasks"] == {"echo.a": "success", "echo.b": "failed", "echo.c": "upstream_failed",
                            "echo.d": "success"}


def test_a_stop_is_not_a_failure_and_dependents_report_skipped(engine):
    run = _run(engine, "echo_stop")
    assert run["state"] == "success"
    assert json.loads(run["xcom"]["echo.c"])["status"] == "skipped"


def test_retrain_verdict_triggers_the_training_dag_and_none_does_not(engine):
    run = _run(engine, "echo_monitor")
    assert run["state"] == "success" and run["tasks"]["trigger.echo_ok"] == "success"
    assert any(r[0] == "loopc_echo_ok" and "operator" in r[2].lower() for r in run["other_runs"])
    calm = _run(engine, "echo_calm")
    assert calm["tasks"]["retrain_needed"] == "success" and calm["tasks"]["trigger.echo_calm"] == "skipped"
    assert not any(r[0] == "loopc_echo_calm" for r in calm["other_runs"])


def test_churn_training_dag_trains_and_registers_a_champion(engine):
    run = _run(engine, "churn_ok")
    assert run["state"] == "success", run["tasks"]
    assert set(run["tasks"].values()) == {"success"}
    from loopc.runtime.registry.connect import open_registry

    with open_registry(engine["roots"]["ok"] / ".loopc" / "registry.db") as registry:
        assert registry.get_alias("churn_classifier", "champion") is not None


def test_corrupt_data_fails_validate_and_everything_downstream(engine):
    run = _run(engine, "churn_bad")
    assert run["state"] == "failed"
    assert run["tasks"]["validate.customers"] == "failed"
    assert {s for t, s in run["tasks"].items() if t != "validate.customers"} == {"upstream_failed"}


def test_drift_triggers_churn_retraining_and_calm_data_does_not(engine):
    calm = _run(engine, "churn_calm")
    assert calm["state"] == "success" and calm["tasks"]["trigger.churn"] == "skipped"
    assert json.loads(calm["xcom"]["monitor.weekly_drift"])["outputs"]["action"] == "none"
    drift = _run(engine, "churn_drift")
    assert drift["state"] == "success", drift["tasks"]
    assert json.loads(drift["xcom"]["monitor.weekly_drift"])["outputs"]["action"] == "retrain"
    assert drift["tasks"]["trigger.churn"] == "success"
    triggered = [r for r in drift["other_runs"] if r[0] == "loopc_churn" and "operator" in r[2].lower()]
    assert len(triggered) == 1


def test_scoring_dag_writes_what_predict_and_the_bundle_give(engine, tmp_path):
    import numpy as np
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq
    from test_score_export import standalone_scores

    from loopc.compiler.cli.main import main as loopc

    run = _run(engine, "churn_score")
    assert run["state"] == "success", run["tasks"]
    root = engine["roots"]["ok"]
    [folder] = list((root / "predictions").iterdir())  # scored before the drift run retrained
    [batch] = list(folder.iterdir())
    version = int(folder.name.split("=")[1])
    written = ds.dataset(batch).to_table()
    assert set(written.column("model_version").to_pylist()) == {version}
    rows = sorted((root / "data" / "customers").glob("*.parquet"))[0]  # the calm run copied these to incoming
    assert written.num_rows == pq.read_metadata(rows).num_rows
    assert loopc(["predict", f"churn_classifier@{version}", str(rows), "-o", str(tmp_path / "cli"), "--root",
                  str(root), "--keys", "customer_id", "--batch-id", "cli"]) == 0
    cli = ds.dataset(tmp_path / "cli", partitioning="hive").to_table()
    assert written.column("customer_id").to_pylist() == cli.column("customer_id").to_pylist()
    np.testing.assert_allclose(written.column("score").to_numpy(), cli.column("score").to_numpy(), atol=1e-6, rtol=0)
    assert loopc(["export", f"churn_classifier@{version}", str(tmp_path / "bundle"), "--root", str(root)]) == 0
    bundle = standalone_scores(tmp_path / "bundle", rows, tmp_path)
    np.testing.assert_allclose(written.column("score").to_numpy(), bundle, atol=1e-6, rtol=0)
