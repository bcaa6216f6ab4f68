"""DagBag parse time of the emitted churn DAG vs a hand-written static DAG vs dag-factory loading YAML.

    python benchmarks/airflow_parse.py [--airflow-python PATH] [--repeat N]

Runs with loopc's interpreter; parsing happens in ONE process of the Airflow venv
($LOOPC_AIRFLOW_PYTHON, default /opt/loopc-airflow/bin/python) so Airflow's import cost is paid once and
excluded. Each round builds a fresh DagBag per variant (round-robin, so load drift hits all alike) and
records wall time of ``DagBag(dag_folder=file)`` and Airflow's own per-file parse duration. dag-factory
is installed into the Airflow venv (pinned by the committed constraints) if absent. Goal: the emitted
file within 10% of the hand-written one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from loopc.compiler.api import load_project
from loopc.compiler.plan.pipeline import Plan, plan_pipeline
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import BACKEND

REPO = Path(__file__).resolve().parent.parent
DAG_FACTORY = "dag-factory==1.1.0"

HAND_WRITTEN = '''"""Churn training loop, written by hand: the same DAG as loopc_churn."""
from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, TaskGroup

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loopc_churn", "steps")
RUN = "python3 -m loopc.runtime run-step " + STEPS + "/{}.json --root \\"$LOOPC_ROOT\\" --run-id {{{{ run_id }}}}"
DEFAULTS = dict(retries=1, retry_delay=timedelta(seconds=60), execution_timeout=timedelta(seconds=1800))

with DAG(
    dag_id="hand_churn",
    description="Weekly retraining of the churn classifier that drives retention offers.",
    doc_md="Weekly retraining of the churn classifier that drives retention offers.",
    schedule="0 3 * * 1",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["growth", "churn", "loopc"],
    default_args={"owner": "growth-ml@example.com"},
):
    with TaskGroup("data", prefix_group_id=False):
        validate = BashOperator(task_id="validate.customers", bash_command=RUN.format("validate.customers"),
                                doc_md="Read dataset customers, enforce its schema and checks", **DEFAULTS)
        split = BashOperator(task_id="split.customers", bash_command=RUN.format("split.customers"),
                             doc_md="Split dataset customers into train/valid/test", **DEFAULTS)
    with TaskGroup("features", prefix_group_id=False):
        features = BashOperator(task_id="features.churn_classifier",
                                bash_command=RUN.format("features.churn_classifier"),
                                doc_md="Fit the features of churn_classifier on the train split", **DEFAULTS)
    with TaskGroup("train", prefix_group_id=False):
        train = BashOperator(task_id="train.churn_classifier", bash_command=RUN.format("train.churn_classifier"),
                             doc_md="Train churn_classifier", retries=1, retry_delay=timedelta(seconds=60),
                             execution_timeout=timedelta(seconds=3600))
    with TaskGroup("evaluate", prefix_group_id=False):
        evaluate = BashOperator(task_id="evaluate.churn_classifier",
                                bash_command=RUN.format("evaluate.churn_classifier"),
                                doc_md="Metrics, slices and fairness of churn_classifier", **DEFAULTS)
        gate = BashOperator(task_id="gate.churn_classifier", bash_command=RUN.format("gate.churn_classifier"),
                            doc_md="Decide whether churn_classifier may replace the champion", **DEFAULTS)
    with TaskGroup("deploy", prefix_group_id=False):
        register = BashOperator(task_id="register.churn_classifier",
                                bash_command=RUN.format("register.churn_classifier"),
                                doc_md="Register a new version of churn_classifier", **DEFAULTS)
        shadow = BashOperator(task_id="shadow.churn_classifier", bash_command=RUN.format("shadow.churn_classifier"),
                              doc_md="Score the same rows with challenger and champion", **DEFAULTS)
        promote = BashOperator(task_id="promote.churn_classifier",
                               bash_command=RUN.format("promote.churn_classifier"),
                               doc_md="Move alias champion when gate, shadow and approval allow", **DEFAULTS)

    validate >> split >> features >> train >> evaluate >> gate
    [features, train] >> evaluate
    [gate, evaluate, features, train, validate] >> register
    [register, features] >> shadow
    [shadow, gate, register] >> promote
'''

FACTORY_LOADER = '''"""dag-factory loader for the churn DAG (airflow DAG built from YAML at parse time)."""
import os

from dagfactory import load_yaml_dags

load_yaml_dags(globals_dict=globals(),
               config_filepath=os.path.join(os.path.dirname(os.path.abspath(__file__)), "factory_churn.yaml"))
'''

MEASURE = r'''
import json, statistics, sys, time
from airflow.dag_processing.dagbag import DagBag
files, repeat = json.loads(sys.argv[1]), int(sys.argv[2])
for path in files.values():                      # warm-up: imports of operators, dagfactory, ...
    DagBag(dag_folder=path)
def local(task_id, dag):
    """The task id without a group prefix (dag-factory cannot turn prefix_group_id off)."""
    group = dag.get_task(task_id).task_group
    if group is not None and group.group_id and group.prefix_group_id:
        return task_id.removeprefix(group.group_id + ".")
    return task_id
wall = {name: [] for name in files}
parse = {name: [] for name in files}
shape = {}
for _ in range(repeat):
    for name, path in files.items():
        start = time.perf_counter()
        bag = DagBag(dag_folder=path)
        wall[name].append(time.perf_counter() - start)
        parse[name].append(sum(s.duration.total_seconds() for s in bag.dagbag_stats))
        assert not bag.import_errors, bag.import_errors
        dag = next(iter(bag.dags.values()))
        shape[name] = sorted((local(t.task_id, dag), tuple(sorted(local(u, dag) for u in t.upstream_task_ids)))
                             for t in dag.tasks)
def q(values, p):
    return sorted(values)[int(p * (len(values) - 1))]
out = {name: {"wall_ms": 1e3 * statistics.median(wall[name]), "wall_p10_ms": 1e3 * q(wall[name], 0.1),
              "wall_p90_ms": 1e3 * q(wall[name], 0.9), "parse_ms": 1e3 * statistics.median(parse[name]),
              "tasks": len(shape[name])} for name in files}
out["_same_shape"] = len({json.dumps(s) for s in shape.values()}) == 1
print(json.dumps(out))
'''


def churn_plans() -> list[Plan]:
    loaded = load_project(REPO / "specs" / "examples" / "churn")[0]
    return plan_pipeline(loaded.spec, spec_hash=loaded.spec_hash)


def factory_yaml(plan: Plan) -> str:
    """The same DAG as a dag-factory YAML document (JSON is valid YAML); task ids get the group prefix."""
    run = 'python3 -m loopc.runtime run-step {steps}/{id}.json --root "$LOOPC_ROOT" --run-id {{{{ run_id }}}}'
    tasks = {}
    for step in plan.steps:
        res = step.resources
        tasks[step.id] = {
            "operator": "airflow.providers.standard.operators.bash.BashOperator",
            "bash_command": run.format(steps="/srv/loopc_churn/steps", id=step.id), "task_group_name": step.stage,
            "retries": res.retries, "retry_delay": {"__type__": "datetime.timedelta", "seconds": res.retry_delay_s},
            "execution_timeout": {"__type__": "datetime.timedelta", "seconds": res.time_s}, "doc_md": step.description, "dependencies": list(step.deps),
        }
    dag = {"default_args": {"owner": plan.owner, "start_date": "2024-01-01"}, "schedule": plan.schedule,
           "catchup": False, "max_active_runs": 1, "description": plan.description, "doc_md": plan.description,
           "tags": [*plan.tags, "loopc"],
           "task_groups": {stage: {"tooltip": stage} for stage in dict.fromkeys(s.stage for s in plan.steps)},
           "tasks": tasks}
    return json.dumps({"factory_churn": dag}, indent=1)


def ensure_dag_factory(python: str) -> bool:
    """Install dag-factory into the Airflow venv (constrained to its pins) unless it imports already."""
    if subprocess.run([python, "-c", "import dagfactory"], capture_output=True).returncode == 0:
        return True
    constraints = REPO / "ci" / "constraints-airflow-3.3.2-py3.11.txt"
    done = subprocess.run([python, "-m", "pip", "install", "-q", DAG_FACTORY, "-c", str(constraints)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"dag-factory could not be installed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return done.returncode == 0


def write_variants(folder: Path, with_factory: bool) -> dict[str, str]:
    """One folder per variant, each with a single DAG file (and the step documents / YAML it needs)."""
    plans = churn_plans()
    files = {}
    emitted = folder / "emitted"
    for relative, text in BACKEND.render(plans[:1], EmitOptions()).items():
        (emitted / relative).parent.mkdir(parents=True, exist_ok=True)
        (emitted / relative).write_text(text)
    files["emitted"] = str(emitted / "loopc_churn.py")
    (folder / "hand").mkdir()
    (folder / "hand" / "hand_churn.py").write_text(HAND_WRITTEN)
    files["hand-written"] = str(folder / "hand" / "hand_churn.py")
    if with_factory:
        (folder / "factory").mkdir()
        (folder / "factory" / "factory_churn.yaml").write_text(factory_yaml(plans[0]))
        (folder / "factory" / "factory_churn.py").write_text(FACTORY_LOADER)
        files["dag-factory"] = str(folder / "factory" / "factory_churn.py")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airflow-python", default=os.environ.get("LOOPC_AIRFLOW_PYTHON",
                                                                    "/opt/loopc-airflow/bin/python"))
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)
    with_factory = ensure_dag_factory(args.airflow_python)
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp) / "home"
        files = write_variants(Path(temp), with_factory)
        env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
                   AIRFLOW__CORE__DAGS_FOLDER=str(Path(temp)), AIRFLOW__LOGGING__LOGGING_LEVEL="ERROR",
                   AIRFLOW__DAG_FACTORY__ENABLE_TELEMETRY="False", DO_NOT_TRACK="1", SCARF_NO_ANALYTICS="true",
                   PYTHONWARNINGS="ignore")
        done = subprocess.run([args.airflow_python, "-c", MEASURE, json.dumps(files), str(args.repeat)],
                              env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return 1
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.1f}; Python {platform.python_version()}; {args.repeat} rounds")
    print(f"{'variant':<14}{'tasks':>6}{'DagBag ms (median)':>20}{'p10':>8}{'p90':>8}{'file parse ms':>15}")
    for name in files:
        row = result[name]
        print(f"{name:<14}{row['tasks']:>6}{row['wall_ms']:>20.2f}{row['wall_p10_ms']:>8.2f}"
              f"{row['wall_p90_ms']:>8.2f}{row['parse_ms']:>15.2f}")
    ratio = result["emitted"]["wall_ms"] / result["hand-written"]["wall_ms"]
    print(f"emitted / hand-written: {ratio:.3f} (goal <= 1.10); same tasks and edges: {result['_same_shape']}")
    if not with_factory:
        print("dag-factory: not installed, variant skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
