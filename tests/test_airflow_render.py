"""Airflow target without Airflow: files, DAG arguments, task wiring, resources, quoting, determinism."""

from __future__ import annotations

import ast
import json
import subprocess
from dataclasses import replace

import pytest
from test_airflow_support import (
    ARGV_DUMP,
    compile_into,
    dag_literals,
    echo_plans,
    echo_step,
    operator_calls,
    rendered_commands,
    run_command,
)
from test_plan_support import example_plans

from loopc.compiler.plan.pipeline import Plan, StepResources, step_document
from loopc.compiler.targets import EmitOptions, backends
from loopc.compiler.targets.airflow.backend import BACKEND, RUN_STEP, AirflowTargetError


def test_backend_is_registered_under_airflow():
    assert backends()["airflow"] is BACKEND


def test_one_dag_file_and_step_documents_per_plan():
    plans = example_plans("churn")
    files = BACKEND.render(plans, EmitOptions())
    expected = {"loopc_churn.py", "loopc_churn_monitor.py", "loopc_churn_score.py"}
    for plan in plans:
        expected |= {f"loopc_{plan.name}/steps/{step.id}.json" for step in plan.steps}
    assert set(files) == expected
    for plan in plans:
        for step in plan.steps:
            assert json.loads(files[f"loopc_{plan.name}/steps/{step.id}.json"]) == json.loads(
                json.dumps(step_document(plan, step)))


def test_dag_arguments_come_from_the_pipeline():
    train, monitor, _ = example_plans("churn")
    files = BACKEND.render([train, monitor], EmitOptions())
    dag = dag_literals(files["loopc_churn.py"])
    assert dag["dag_id"] == "loopc_churn" and dag["schedule"] == "0 3 * * 1"
    assert dag["tags"] == ["growth", "churn", "loopc"] and dag["default_args"] == {"owner": train.owner}
    assert dag["description"] == train.description and train.description in dag["doc_md"]
    assert "limited" in dag["doc_md"] and "not for pricing" in dag["doc_md"]
    assert not dag["doc_md"].endswith(".md")  # Airflow would open a doc_md ending in .md as a file
    assert dag_literals(files["loopc_churn_monitor.py"])["schedule"] == monitor.schedule == "0 * * * *"


def test_tasks_and_edges_mirror_the_plan():
    plan = example_plans("churn")[0]
    text = BACKEND.render([plan], EmitOptions())["loopc_churn.py"]
    calls = operator_calls(text)
    assert sorted(calls) == sorted(step.id for step in plan.steps)
    tree = ast.parse(text)
    edges = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.RShift):
            ups = node.left.elts if isinstance(node.left, ast.List) else [node.left]
            edges |= {(up.id, node.right.id) for up in ups}
    var = {step.id: step.id.replace(".", "_") for step in plan.steps}
    assert edges == {(var[dep], var[step.id]) for step in plan.steps for dep in step.deps}


def test_task_groups_follow_stages():
    plan = example_plans("churn")[0]
    text = BACKEND.render([plan], EmitOptions())["loopc_churn.py"]
    groups = [ast.literal_eval(n.items[0].context_expr.args[0]) for n in ast.walk(ast.parse(text))
              if isinstance(n, ast.With) and getattr(n.items[0].context_expr.func, "id", "") == "TaskGroup"]
    assert groups == list(dict.fromkeys(step.stage for step in plan.steps))


def test_resources_become_operator_arguments():
    resources = StepResources(retries=3, retry_delay_s=45, time_s=5400, pool="gpu", queue="big", priority=7)
    plan = Plan("res", "train", (replace(echo_step("echo.a"), resources=resources),))
    call = operator_calls(BACKEND.render([plan], EmitOptions())["loopc_res.py"])["echo.a"]
    assert call["retries"] == 3 and call["pool"] == "gpu" and call["queue"] == "big"
    assert call["priority_weight"] == 7
    assert call["retry_delay"] == "timedelta(seconds=45)" and call["execution_timeout"] == "timedelta(seconds=5400)"
    bare = Plan("bare", "train", (echo_step("echo.a"),))
    assert not {"pool", "queue", "priority_weight"} & set(operator_calls(
        BACKEND.render([bare], EmitOptions())["loopc_bare.py"])["echo.a"])


def test_bash_command_templates_hold_no_values():
    options = EmitOptions(python="/opt/{{ evil }}/python", root="/srv/{% raw %}/$(touch x)")
    files = BACKEND.render(echo_plans("q"), options)
    for step_id, call in operator_calls(files["loopc_q.py"]).items():
        assert call["bash_command"] == RUN_STEP % f"{step_id}.json"


def test_rendered_command_runs_the_step_with_run_id_and_root(tmp_path):
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(ARGV_DUMP)
    python.chmod(0o755)
    dags = tmp_path / "dags"
    compile_into(dags, echo_plans("cmd"), EmitOptions(python=str(python), root="/data/project one"))
    command = rendered_commands(dags / "loopc_cmd.py")["echo.b"]
    argv = run_command(command, tmp_path, tmp_path / "argv", {"AIRFLOW_CTX_DAG_RUN_ID": "manual__2026"})
    assert argv == ["-m", "loopc.runtime", "run-step", str(dags / "loopc_cmd" / "steps" / "echo.b.json"),
                    "--root", "/data/project one", "--run-id", "manual__2026"]


def test_root_defaults_to_loopc_root_at_run_time(tmp_path):
    python = tmp_path / "python"
    python.write_text(ARGV_DUMP)
    python.chmod(0o755)
    compile_into(tmp_path, echo_plans("env"), EmitOptions(python=str(python)))
    command = rendered_commands(tmp_path / "loopc_env.py")["echo.a"]
    argv = run_command(command, tmp_path, tmp_path / "argv", {"LOOPC_ROOT": "/p", "AIRFLOW_CTX_DAG_RUN_ID": "r"})
    assert argv[4:6] == ["--root", "/p"]
    done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "ARGV_DUMP": str(tmp_path / "x")})
    assert done.returncode != 0 and "set LOOPC_ROOT" in done.stderr


def test_monitor_dag_triggers_training_through_a_short_circuit():
    train, monitor, _ = example_plans("churn")
    text = BACKEND.render([train, monitor], EmitOptions())["loopc_churn_monitor.py"]
    calls = operator_calls(text)
    assert calls["trigger.churn"]["trigger_dag_id"] == "loopc_churn"
    assert "@task.short_circuit(task_id=\"retrain_needed\")" in text
    assert "retrain_needed([monitor_weekly_drift.output]) >> trigger_training" in text
    assert "TriggerDagRunOperator" not in BACKEND.render([train], EmitOptions())["loopc_churn.py"]


def test_alert_only_monitors_have_no_trigger():
    train, monitor = echo_plans("alert")
    alert = replace(monitor, steps=(replace(monitor.steps[0], config={"monitor": {"action": {"on_breach": "alert"}}}),))
    assert "TriggerDagRunOperator" not in BACKEND.render([train, alert], EmitOptions())["loopc_alert_monitor.py"]


def test_secrets_are_named_never_valued():
    plan = example_plans("churn")[0]
    register = next(s for s in plan.steps if s.kind == "register")
    pipeline = dict(register.config["pipeline"], secrets={"db_password": "CHURN_DB_PASSWORD"})
    plan = replace(plan, steps=tuple(replace(s, config=dict(s.config, pipeline=pipeline)) if s is register else s
                                     for s in plan.steps))
    doc = dag_literals(BACKEND.render([plan], EmitOptions())["loopc_churn.py"])["doc_md"]
    assert "secret db_password: read from CHURN_DB_PASSWORD" in doc


def test_check_reports_what_airflow_would_reject():
    plan = Plan("bad", "train", (echo_step("echo.a"), replace(echo_step("echo_a"), id="echo_a")),
                tags=("t" * 101,))
    issues = BACKEND.check([plan], EmitOptions())
    assert any("longer than Airflow's 100" in i for i in issues)
    assert any("same DAG variable 'echo_a'" in i for i in issues)
    assert any("a name the DAG file defines itself" in i for i in BACKEND.check(
        [Plan("r", "train", (echo_step("trigger.training"),))], EmitOptions()))
    assert any("not an Airflow task id" in i for i in BACKEND.check(
        [Plan("x", "train", (replace(echo_step("a"), id="A {{b}}"),))], EmitOptions()))
    with pytest.raises(AirflowTargetError, match="cannot compile for Airflow"):
        BACKEND.render([plan], EmitOptions())
    assert BACKEND.check(example_plans("churn"), EmitOptions()) == []


@pytest.mark.parametrize("example", ["churn", "demand"])
def test_compiling_twice_gives_identical_bytes(example):
    options = EmitOptions(python="/venv/bin/python", root="/srv/loop")
    first = BACKEND.render(example_plans(example), options)
    second = BACKEND.render(example_plans(example), options)
    assert first == second and list(first) == sorted(first)
    for path, text in first.items():
        if path.endswith(".py"):
            compile(text, path, "exec")
            assert "\r" not in text and text.endswith("\n")


def test_emitted_file_imports_only_stdlib_pendulum_and_airflow():
    files = BACKEND.render(example_plans("churn"), EmitOptions())
    for path in ("loopc_churn.py", "loopc_churn_monitor.py"):
        modules = set()
        for node in ast.walk(ast.parse(files[path])):
            if isinstance(node, ast.Import):
                modules |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                modules.add((node.module or "").split(".")[0])
        assert modules <= {"__future__", "json", "os", "shlex", "datetime", "pendulum", "airflow"}, modules
        assert "open(" not in files[path] and "yaml" not in files[path]


def test_sweep_trials_are_separate_tasks():
    plan = example_plans("churn", model="mlp")[0]
    calls = operator_calls(BACKEND.render([plan], EmitOptions())["loopc_churn.py"])
    trials = sorted(t for t in calls if t.startswith("train.churn_classifier.t"))
    assert len(trials) >= 2 and "select.churn_classifier" in calls

