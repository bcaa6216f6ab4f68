"""The Slurm target's files: jobs and arrays, #SBATCH resources, bash syntax, determinism, golden files.

LOOPC_UPDATE_GOLDEN=1 (``make golden``) rewrites tests/golden/slurm/ for review.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from golden_support import assert_matches_golden
from test_plan_support import GOLDEN_CASES, example_plans, mask_version

from loopc.compiler.plan.pipeline import Plan, Step, StepResources
from loopc.compiler.targets import EmitOptions, backends
from loopc.compiler.targets.slurm.backend import (
    BACKEND,
    SlurmTargetError,
    plan_jobs,
    slurm_time,
)


def _step(step_id: str, kind: str = "validate", deps: tuple[str, ...] = (), **extra) -> Step:
    return Step(id=step_id, kind=kind, stage="data", config=extra.pop("config", {}), deps=deps,
                fingerprint="f" * 64, **extra)


def _plan(*steps: Step, **extra) -> Plan:
    return Plan(pipeline="p", kind=extra.pop("kind", "train"), steps=steps, spec_hash="h" * 64, **extra)


def _sweep_plan(concurrency: int = 2) -> Plan:
    trials = [_step(f"train.m.t{i}", "train", ("features.m",), array="train.m", array_index=i) for i in range(3)]
    return _plan(
        _step("features.m", "features"),
        # listed out of index order on purpose: the array orders by array_index
        trials[2], trials[0], trials[1],
        _step("select.m", "select", tuple(t.id for t in trials),
              config={"sweep": {"concurrency": concurrency}, "trials": [t.id for t in trials]}),
        _step("evaluate.m", "evaluate", ("select.m", "features.m")),
    )


def _sbatch_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("#SBATCH ")]


def test_slurm_is_registered_as_a_backend():
    assert backends()["slurm"] is BACKEND


def test_sweep_trials_become_one_array_job_that_select_waits_for():
    jobs = plan_jobs(_sweep_plan())
    assert [(j.name, j.deps) for j in jobs] == [
        ("features.m", ()), ("train.m", ("features.m",)), ("select.m", ("train.m",)),
        ("evaluate.m", ("features.m", "select.m")),
    ]
    assert [s.id for s in jobs[1].steps] == ["train.m.t0", "train.m.t1", "train.m.t2"]
    files = BACKEND.render([_sweep_plan(concurrency=2)], EmitOptions())
    script = files["p/train.m.sbatch"]
    assert "#SBATCH --array=0-2%2" in script and "#SBATCH --output=logs/%x-%A_%a.log" in script
    assert "steps=( train.m.t0 train.m.t1 train.m.t2 )" in script
    assert "submit select.m train.m\n" in files["p/submit.sh"]
    assert not any(name.startswith("p/train.m.t") and name.endswith(".sbatch") for name in files)


def test_submit_records_each_array_task_as_array_id_underscore_index():
    submit = BACKEND.render([_sweep_plan()], EmitOptions())["p/submit.sh"]
    assert """printf '  "%s": "%s_1",\\n' train.m.t1 "${job[train.m]}\"""" in submit


def test_resources_map_to_sbatch_options_and_training_gets_requeue_and_signal():
    res = StepResources(cpus=4, gpus=2, memory_mb=8192, time_s=90061, nodes=3, partition="gpu",
                        account="ml team", qos="high")
    plan = _plan(_step("validate.d"), _step("train.m", "train", ("validate.d",), resources=res))
    files = BACKEND.render([plan], EmitOptions())
    train = _sbatch_lines(files["p/train.m.sbatch"])
    assert train == [
        "#SBATCH --job-name=p.train.m", "#SBATCH --output=logs/%x-%j.log", "#SBATCH --error=logs/%x-%j.log",
        "#SBATCH --time=1-01:01:01", "#SBATCH --nodes=3", "#SBATCH --ntasks-per-node=1",
        "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8192M", "#SBATCH --gres=gpu:2", "#SBATCH --partition=gpu",
        "#SBATCH --account='ml team'", "#SBATCH --qos=high", "#SBATCH --requeue", "#SBATCH --open-mode=append",
        "#SBATCH --signal=B:USR1@120",
    ]
    assert 'srun --kill-on-bad-exit=1 "$LOOPC_PYTHON" -m loopc.runtime run-step' in files["p/train.m.sbatch"]
    validate = files["p/validate.d.sbatch"]
    assert not any(opt in validate for opt in ("--requeue", "--signal", "--gres", "srun ", "--partition"))


def test_one_gpu_training_runs_without_srun():
    plan = _plan(_step("train.m", "train", resources=StepResources(gpus=1)))
    script = BACKEND.render([plan], EmitOptions())["p/train.m.sbatch"]
    assert "#SBATCH --gres=gpu:1" in script and "srun " not in script


@pytest.mark.parametrize("seconds, text", [(0, "00:01:00"), (59, "00:01:00"), (3600, "01:00:00"),
                                           (86400 * 2 + 61, "2-00:01:01")])
def test_slurm_time_format(seconds, text):
    assert slurm_time(seconds) == text


def test_monitor_plan_submits_the_training_plan_on_retrain_and_has_a_schedule():
    plans = [_plan(_step("validate.d")),
             _plan(_step("monitor.w", "monitor"), kind="monitor", triggers="p", schedule="0 * * * *")]
    files = BACKEND.render(plans, EmitOptions())
    monitor = files["p_monitor/monitor.w.sbatch"]
    assert 'env -u LOOPC_RUN_ID bash "$LOOPC_PLAN_DIR/../"p/submit.sh' in monitor
    assert 'mkdir "$LOOPC_PLAN_DIR/submitted/retrain-$LOOPC_RUN_ID"' in monitor  # one retrain per monitor run
    assert "json.loads(lines[-1])" in monitor and "eval" not in monitor
    assert files["p_monitor/schedule.scrontab"].splitlines()[-1] == "0 * * * * bash ./submit.sh"
    assert "--scrontab" in files["p_monitor/submit.sh"] and "--scrontab" not in files["p/submit.sh"]


def test_the_training_plan_runs_on_the_pipeline_schedule_through_scrontab():
    """Slurm has no scheduler of its own for pipeline.schedule: the training plan gets scrontab lines too."""
    weekly = BACKEND.render([_plan(_step("validate.d"), schedule="0 3 * * 1")], EmitOptions())
    assert weekly["p/schedule.scrontab"].splitlines()[-1] == "0 3 * * 1 bash ./submit.sh"
    assert "--scrontab" in weekly["p/submit.sh"]
    once = BACKEND.render([_plan(_step("validate.d"), schedule="@once")], EmitOptions())
    assert "p/schedule.scrontab" not in once and "--scrontab" not in once["p/submit.sh"]


@pytest.mark.parametrize("schedule", ["* * * * * touch /tmp/x; :", "0 * * * *\n* * * * * id", "@once", "61 * * * *"])
def test_a_schedule_scrontab_cannot_carry_is_refused_before_writing(schedule):
    """Plans built without the spec checks (library use) meet the same cron grammar as specs do."""
    plans = [_plan(_step("validate.d")),
             _plan(_step("monitor.w", "monitor"), kind="monitor", triggers="p", schedule=schedule)]
    assert any(p.startswith("monitor plan p_monitor: ") and "scrontab" in p for p in BACKEND.check(plans, EmitOptions()))
    with pytest.raises(SlurmTargetError, match="scrontab takes one cron line"):
        BACKEND.render(plans, EmitOptions())


def test_the_cronline_filter_refuses_what_a_backend_check_missed():
    from loopc.compiler.errors import InternalError
    from loopc.compiler.targets.jinja import render

    assert render("slurm", "schedule.scrontab.j2", version="v", pipeline="p", plan="p_monitor",
                  schedule="@daily").splitlines()[-1] == "@daily bash ./submit.sh"
    with pytest.raises(InternalError, match="unchecked schedule"):
        render("slurm", "schedule.scrontab.j2", version="v", pipeline="p", plan="p_monitor",
               schedule="* * * * * id\n* * * * *")


def test_the_scrontab_line_has_single_spaces_between_fields():
    plans = [_plan(_step("validate.d")),
             _plan(_step("monitor.w", "monitor"), kind="monitor", triggers="p", schedule=" 0  *  * * 1 ")]
    files = BACKEND.render(plans, EmitOptions())
    assert files["p_monitor/schedule.scrontab"].splitlines()[-1] == "0 * * * 1 bash ./submit.sh"


@pytest.mark.parametrize("field", ["partition", "account", "qos"])
@pytest.mark.parametrize("value", ["gpu\n#SBATCH --wrap=x", "a\rb", "", "tab\there"])
def test_names_slurm_cannot_carry_are_refused_with_a_clear_error(field, value):
    plan = _plan(_step("validate.d", resources=StepResources(**{field: value})))
    assert BACKEND.check([plan], EmitOptions())
    with pytest.raises(SlurmTargetError, match=f"resources.{field} of step validate.d"):
        BACKEND.render([plan], EmitOptions())


def test_step_ids_outside_the_safe_alphabet_are_refused():
    plan = _plan(_step("validate.d; touch x"))
    with pytest.raises(SlurmTargetError, match="step id"):
        BACKEND.render([plan], EmitOptions())


def _example_files(example: str, choices: dict, **options) -> dict[str, str]:
    return BACKEND.render(example_plans(example, **choices), EmitOptions(**options))


@pytest.mark.parametrize("case, example, choices", GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_every_emitted_script_passes_bash_n_and_rendering_is_deterministic(case, example, choices, tmp_path):
    first = _example_files(example, choices, python="/opt/py/bin/python", root="/srv/x")
    again = _example_files(example, choices, python="/opt/py/bin/python", root="/srv/x")
    assert first == again
    scripts = [p for p in first if p.endswith((".sh", ".sbatch"))]
    assert any(p.endswith("/submit.sh") for p in scripts) and any(p.endswith(".sbatch") for p in scripts)
    for path in scripts:
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(first[path])
        check = subprocess.run(["bash", "-n", str(target)], capture_output=True, text=True)
        assert check.returncode == 0, f"{path}: {check.stderr}"
        assert first[path].startswith("#!/bin/bash\n") and "set -euo pipefail\n" in first[path]
        assert "/work/" not in first[path] and str(Path.home()) not in first[path]


def test_example_sweep_uses_the_models_sweep_concurrency():
    files = _example_files("churn", {"model": "mlp"})
    assert re.search(r"^#SBATCH --array=0-1%2$", files["churn/train.churn_classifier.sbatch"], re.M)


@pytest.mark.parametrize("case, example, choices", GOLDEN_CASES, ids=[c[0] for c in GOLDEN_CASES])
def test_slurm_output_matches_golden_files(case, example, choices):
    files = {path: mask_version(text) for path, text in
             BACKEND.render(example_plans(example, **choices), EmitOptions()).items()}
    assert_matches_golden('slurm', case, files)



def test_control_characters_are_exactly_unicodes_category_cc():
    import sys
    import unicodedata

    from loopc.compiler.targets.slurm.backend import CONTROL, comment_lines

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    assert [m.group() for m in CONTROL.finditer(every)] == [ch for ch in every if unicodedata.category(ch) == "Cc"]
    assert comment_lines("a\x00b\x7f\x9fc\x1b[0m\u00a0d \n\tsecond\t") == ["a b  c [0m\u00a0d", " second"]
