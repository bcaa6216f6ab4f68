"""Helpers for the Airflow target tests: hand-built plans, reading emitted DAG files without Airflow (no tests)."""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path
from typing import Any

from golden_support import write_tree
from jinja2.sandbox import SandboxedEnvironment

from loopc.compiler.plan.pipeline import Plan, Step, StepResources
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import BACKEND

AIRFLOW_IMPORTS = ("airflow", "pendulum")


def echo_step(step_id: str, deps: tuple[str, ...] = (), stage: str = "data", **config: Any) -> Step:
    """A step of the runtime's diagnostic ``echo`` kind (outputs / fail / stop in its config)."""
    return Step(id=step_id, kind="echo", stage=stage, config=dict(config), deps=deps,
                fingerprint=f"fp-{step_id}", resources=StepResources(retries=0), cacheable=False,
                description=f"echo step {step_id}")


def echo_plans(name: str, fail: str | None = None, stop: str | None = None, action: str = "retrain") -> list[Plan]:
    """A 4-step training plan (a -> b -> c, a -> d) and a monitor plan whose verdict is ``action``."""
    def cfg(step_id: str) -> dict[str, Any]:
        return {"fail": "broken on purpose"} if step_id == fail else {"stop": "gate rejected"} if step_id == stop else {}

    train = Plan(name, "train", (
        echo_step("echo.a", **cfg("echo.a")), echo_step("echo.b", ("echo.a",), "train", **cfg("echo.b")),
        echo_step("echo.c", ("echo.b",), "deploy", **cfg("echo.c")), echo_step("echo.d", ("echo.a",), "deploy"),
    ), description=f"echo pipeline {name}", owner="ops", tags=("echo",), spec_hash="0" * 64)
    monitor_config = {"monitor": {"action": {"on_breach": "retrain"}}, "outputs": {"action": action}}
    monitor = Plan(name, "monitor", (echo_step("monitor.m", stage="monitor", **monitor_config),),
                   spec_hash="0" * 64, triggers=train.name)
    return [train, monitor]


def compile_into(folder: Path, plans: list[Plan], options: EmitOptions = EmitOptions()) -> dict[str, str]:
    files = BACKEND.render(plans, options)
    write_tree(folder, files)
    return files


def dag_call(tree: ast.Module) -> ast.Call:
    """The ``DAG(...)`` call of an emitted file's ``with DAG(...):`` statement."""
    for node in tree.body:
        if isinstance(node, ast.With) and isinstance(node.items[0].context_expr, ast.Call):
            return node.items[0].context_expr
    raise AssertionError("no `with DAG(...)` statement")


def dag_literals(text: str) -> dict[str, Any]:
    """The DAG's keyword arguments that are Python literals."""
    out = {}
    for keyword in dag_call(ast.parse(text)).keywords:
        try:
            out[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            continue
    return out


def operator_calls(text: str) -> dict[str, dict[str, Any]]:
    """task_id -> literal keyword arguments of every operator call in the file."""
    calls = {}
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Call) and any(k.arg == "task_id" for k in node.keywords):
            kwargs = {}
            for k in node.keywords:
                try:
                    kwargs[k.arg] = ast.literal_eval(k.value)
                except ValueError:
                    kwargs[k.arg] = ast.unparse(k.value)
            calls[kwargs["task_id"]] = kwargs
    return calls


def dag_prelude(path: Path) -> dict[str, Any]:
    """Execute the emitted file's module-level statements before ``with DAG`` (stdlib only) as Airflow would."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    body = []
    for node in tree.body:
        if isinstance(node, ast.With):
            break
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(AIRFLOW_IMPORTS):
            continue
        if isinstance(node, ast.Import) and any(a.name.startswith(AIRFLOW_IMPORTS) for a in node.names):
            continue
        body.append(node)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": "loopc_dag_prelude"}
    exec(compile(ast.Module(body=body, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    return namespace


def rendered_commands(path: Path) -> dict[str, str]:
    """task_id -> bash_command rendered by a Jinja sandbox (Airflow's kind) with the file's ``loopc`` macro."""
    macro = dag_prelude(path)["LOOPC"]
    env = SandboxedEnvironment()
    return {task_id: env.from_string(kwargs["bash_command"]).render(loopc=macro)
            for task_id, kwargs in operator_calls(path.read_text(encoding="utf-8")).items()
            if "bash_command" in kwargs}


ARGV_DUMP = '#!/bin/sh\nfor a in "$@"; do printf "%s\\0" "$a"; done > "$ARGV_DUMP"\n'


def run_command(command: str, cwd: Path, dump: Path, env: dict[str, str]) -> list[str]:
    """Run ``bash -c command`` in ``cwd``; the interpreter is an argv dump script: return the argv it saw."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARGV_DUMP": str(dump), **env}
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, f"bash failed: {done.stderr}"
    return dump.read_bytes().decode("utf-8", "surrogateescape").split("\0")[:-1]
