"""The Slurm target on a real single-node Slurm cluster (ci/slurm-up.sh): submit, chain, arrays, status.

Skipped when sbatch/sinfo do not answer; failed instead under LOOPC_REQUIRE_ENGINES=1 (CI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopc.compiler.api import load_project
from loopc.compiler.cli.main import main as loopc
from loopc.compiler.plan.pipeline import Plan, Step, StepResources
from loopc.compiler.plan.project import plan_project
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.slurm.backend import BACKEND
from loopc.compiler.targets.slurm.jobs import (
    jobcomp_path,
    jobcomp_records,
    load_submission,
    parse_fields,
)
from loopc.runtime.registry.connect import open_registry

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]

EXAMPLE = Path(__file__).resolve().parent.parent / "specs" / "examples" / "churn"
FAST = ["pipeline.resources.retries=0"]


def compile_churn(root: Path, overrides: list[str]) -> Path:
    """The churn example compiled for Slurm into ROOT/compiled, running with this interpreter on ROOT."""
    plans = plan_project(load_project(EXAMPLE / "pipeline.yaml", overrides))
    out = root / "compiled"
    for relative, text in BACKEND.render(plans, EmitOptions(python=sys.executable, root=str(root))).items():
        (out / relative).parent.mkdir(parents=True, exist_ok=True)
        (out / relative).write_text(text, encoding="utf-8")
    return out


def make_project(root: Path, rows: int = 1000) -> Path:
    subprocess.run([sys.executable, str(EXAMPLE / "generate.py"), "--root", str(root), "--rows", str(rows)],
                   check=True, capture_output=True)
    return root


def submit(plan_dir: Path, *args: str) -> dict[str, str]:
    """Run submit.sh with the real sbatch; the recorded step -> job id map."""
    done = subprocess.run(["bash", str(plan_dir / "submit.sh"), *args], capture_output=True, text=True,
                          cwd=plan_dir.parent, timeout=120)
    assert done.returncode == 0, done.stderr
    return load_submission(plan_dir).jobs


def wait_jobs(job_ids, timeout: float = 900) -> None:
    """Poll squeue every 0.2 s until none of the jobs is pending or running."""
    ids = ",".join(sorted({j.split("_")[0] for j in job_ids}))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        queue = subprocess.run(["squeue", "-h", "-j", ids], capture_output=True, text=True, timeout=60)
        if queue.returncode == 0 and not queue.stdout.strip():
            return
        time.sleep(0.2)
    pytest.fail(f"jobs {ids} still queued after {timeout} s")


def warn_time_limit(job: str, timeout: float = 300) -> None:
    """Once ``job`` runs, send its batch shell USR1, the warning Slurm gives before the time limit.

    The job requeues itself; Slurm then holds it ~2 minutes (Reason=BeginTime), which the test
    shortens to 15 s. Not to 0: a job restarted within a second of its requeue is killed with
    "Job credential revoked" while its previous run still winds down on the node.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = subprocess.run(["squeue", "-h", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout
        if state.strip() == "RUNNING":
            time.sleep(2)
            subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
            break
        time.sleep(0.2)
    while time.monotonic() < deadline:
        shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
        if " Restarts=1 " in shown and " JobState=PENDING " in shown:
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+15"], check=True)
            return
        time.sleep(0.2)
    pytest.fail(f"job {job} was not requeued within {timeout} s of starting")


def status_json(path: Path, capsys) -> tuple[int, list[dict]]:
    capsys.readouterr()
    code = loopc(["status", str(path), "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_churn_sweep_runs_as_an_array_registers_a_champion_and_drift_resubmits(tmp_path, capsys):
    root = make_project(tmp_path / "project")
    out = compile_churn(root, ["model=mlp", "model.resources.cpus=1", *FAST])  # both trials at once on 2 cores
    jobs = submit(out / "churn")
    trials = {step: job for step, job in jobs.items() if step.startswith("train.")}
    assert sorted(trials) == ["train.churn_classifier.t0", "train.churn_classifier.t1"]
    array_id = trials["train.churn_classifier.t0"].split("_")[0]
    assert trials == {"train.churn_classifier.t0": f"{array_id}_0", "train.churn_classifier.t1": f"{array_id}_1"}
    warn_time_limit(f"{array_id}_0")  # as --signal=B:USR1@120 does: the trial requeues itself and resumes
    wait_jobs(jobs.values())

    code, [report] = status_json(out / "churn", capsys)
    states = {job["step"]: job["state"] for job in report["jobs"]}
    assert code == 0 and set(states.values()) == {"COMPLETED"}, states
    champion = open_registry(root / ".loopc" / "registry.db").get_alias("churn_classifier", "champion")
    assert champion is not None
    # the finished jobs' jobcomp lines (status's fallback once records age out) agree with scontrol
    comp = jobcomp_records(jobcomp_path(), set(jobs.values()))
    assert {key: fields["JobState"] for key, fields in comp.items()} == {j: "COMPLETED" for j in jobs.values()}
    assert {comp[j]["ArrayJobId"] for j in trials.values()} == {array_id}
    shown = subprocess.run(["scontrol", "show", "job", "-o", f"{array_id}_0"], capture_output=True, text=True).stdout
    assert " Restarts=1 " in shown and " JobState=COMPLETED " in shown
    log = Path(report["jobs"][[j["step"] for j in report["jobs"]].index("train.churn_classifier.t0")]["log"])
    assert "time limit near: requeueing job" in log.read_text()

    # drifted rows arrive: the monitor job's verdict is retrain, so it submits the training plan again
    subprocess.run([sys.executable, str(EXAMPLE / "generate.py"), "--root", str(root), "--rows", "400",
                    "--drifted"], check=True, capture_output=True)
    monitor_jobs = submit(out / "churn_monitor")
    wait_jobs(monitor_jobs.values(), timeout=300)
    _, [monitor] = status_json(out / "churn_monitor", capsys)
    assert [job["state"] for job in monitor["jobs"]] == ["COMPLETED"]
    retrain = load_submission(out / "churn")
    assert retrain.run_id != load_submission(out / "churn", report["run_id"]).run_id
    assert loopc(["cancel", str(out / "churn")]) == 0  # the retraining itself is the test above
    wait_jobs(retrain.jobs.values(), timeout=120)


def test_failing_step_cancels_its_dependents_and_status_says_why(tmp_path, capsys):
    root = tmp_path / "project"
    (root / "data" / "customers").mkdir(parents=True)
    (root / "data" / "customers" / "batch-000.parquet").write_bytes(b"this is not a parquet file\n")
    out = compile_churn(root, FAST)
    jobs = submit(out / "churn")
    wait_jobs(jobs.values(), timeout=300)

    code, [report] = status_json(out / "churn", capsys)
    by_step = {job["step"]: job for job in report["jobs"]}
    assert code == 1
    assert by_step["validate.customers"]["state"] == "FAILED"
    assert by_step["validate.customers"]["exit_code"] == "1:0"
    assert "batch-000.parquet" in by_step["validate.customers"]["why"]
    dependents = [job for step, job in by_step.items() if step != "validate.customers"]
    assert {(j["state"], j["reason"]) for j in dependents} == {("CANCELLED", "DependencyNeverSatisfied")}

    assert loopc(["status", str(out)]) == 1
    text = capsys.readouterr().out
    assert "step validate.customers failed" in text and "batch-000.parquet" in text


def test_cancel_stops_the_jobs_still_queued(tmp_path, capsys):
    root = make_project(tmp_path / "project")
    out = compile_churn(root, FAST)
    jobs = submit(out / "churn", "--run-id", "to-cancel")
    assert loopc(["cancel", str(out / "churn")]) == 0
    assert "cancelled" in capsys.readouterr().out
    wait_jobs(jobs.values(), timeout=120)
    _, [report] = status_json(out / "churn", capsys)
    assert report["run_id"] == "to-cancel"
    assert "CANCELLED" in {job["state"] for job in report["jobs"]}
    assert {job["state"] for job in report["jobs"]} <= {"CANCELLED", "COMPLETED"}
    assert loopc(["cancel", str(out / "churn")]) == 0
    assert "nothing to cancel" in capsys.readouterr().out


HOSTILE = ["a b;$(touch /tmp/loopc-slurm-engine-mark)", "it's", 'say "x"', "`id`#c", "ünï €"]


def test_sbatch_reads_quoted_directive_values_exactly(tmp_path):
    """Account is the directive Slurm stores verbatim without accounting (QOS needs slurmdbd)."""
    steps = tuple(Step(f"validate.d{i}", "validate", "data", {}, (), "f" * 64, StepResources(account=value))
                  for i, value in enumerate(HOSTILE))
    files = BACKEND.render([Plan("p", "train", steps)], EmitOptions())
    for i, value in enumerate(HOSTILE):
        script = tmp_path / f"d{i}.sbatch"
        script.write_text(files[f"p/validate.d{i}.sbatch"], encoding="utf-8")
        job = subprocess.run(["sbatch", "--hold", "--parsable", f"--chdir={tmp_path}", str(script)],
                             capture_output=True, text=True, check=True).stdout.strip()
        try:
            shown = subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True, text=True).stdout
        finally:
            subprocess.run(["scancel", job], check=True)
        assert f" Account={value} " in shown
    assert not Path("/tmp/loopc-slurm-engine-mark").exists()


def test_status_says_clearly_when_the_controller_is_unreachable(tmp_path, capsys, monkeypatch):
    conf = Path(os.environ.get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    dead = "\n".join(line for line in conf.splitlines() if not line.startswith("SlurmctldPort="))
    (tmp_path / "slurm.conf").write_text(dead + "\nSlurmctldPort=6999\nMessageTimeout=2\n")
    plan_dir = tmp_path / "p"
    (plan_dir / "submitted").mkdir(parents=True)
    (plan_dir / "submitted" / "r.json").write_text('{"plan": "p", "run_id": "r", "jobs": {"validate.d": "1"}}')
    (plan_dir / "submitted" / "latest").write_text("r\n")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "slurm.conf"))
    assert loopc(["status", str(plan_dir)]) == 1
    err = capsys.readouterr().err
    assert "Unable to contact slurm controller" in err and "slurmctld" in err and "Traceback" not in err


def test_a_refused_submission_cancels_the_jobs_already_submitted(tmp_path):
    steps = (Step("validate.d", "validate", "data", {}, (), "f" * 64),
             Step("train.m", "train", "train", {}, ("validate.d",), "f" * 64, StepResources(partition="nope")))
    for relative, text in BACKEND.render([Plan("p", "train", steps)], EmitOptions()).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    done = subprocess.run(["bash", str(tmp_path / "p" / "submit.sh")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert "sbatch refused train.m.sbatch; cancelling the 1 jobs submitted before it" in done.stderr
    first = done.stdout.split("submitted validate.d as job ")[1].split()[0]
    wait_jobs([first], timeout=60)
    shown = subprocess.run(["scontrol", "show", "job", "-o", first], capture_output=True, text=True).stdout
    assert " JobState=CANCELLED " in shown or " JobState=FAILED " in shown  # cancelled, or ran (no data) first
    assert not (tmp_path / "p" / "submitted" / "latest").exists()


def test_multi_node_training_launches_the_runtime_through_srun(tmp_path):
    """nodes=2 compiles to srun; run here on the one node (command-line --nodes=1 overrides #SBATCH).

    The step's upstream was never run, so the runtime itself fails: its error must come back through
    srun as the job's exit code and log line.
    """
    step = Step("train.m", "train", "train", {}, ("features.m",), "f" * 64, StepResources(nodes=2, time_s=300))
    for relative, text in BACKEND.render([Plan("p", "train", (step,))], EmitOptions(python=sys.executable,
                                                                                   root=str(tmp_path))).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    plan_dir = tmp_path / "p"
    (plan_dir / "logs").mkdir()
    assert "srun --kill-on-bad-exit=1" in (plan_dir / "train.m.sbatch").read_text()
    job = subprocess.run(["sbatch", "--parsable", "--nodes=1", f"--chdir={plan_dir}", "--export=ALL,LOOPC_RUN_ID=r1",
                          str(plan_dir / "train.m.sbatch")], capture_output=True, text=True, check=True).stdout.strip()
    wait_jobs([job], timeout=300)
    shown = parse_fields(subprocess.run(["scontrol", "show", "job", "-o", job], capture_output=True,
                                        text=True).stdout)
    assert (shown["JobState"], shown["ExitCode"]) == ("FAILED", "1:0")
    log = Path(shown["StdOut"]).read_text()
    assert "error: step train.m failed: step 'train.m' needs 'features.m'" in log and "srun: error" in log
