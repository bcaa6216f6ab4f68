"""Reading Slurm's answers for `loopc status`: scontrol -o lines, jobcomp records, records, failure reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.targets.slurm.jobs import (
    JobStatus,
    SlurmError,
    _pending_array,
    failure_reason,
    jobcomp_records,
    load_submission,
    log_file,
    parse_fields,
    plan_dirs,
    record_key,
    slurm_command,
)

# Real lines from Slurm 22.05 on this project's CI cluster (StdOut path given a space on purpose).
SCONTROL_TASK = (
    "JobId=67 ArrayJobId=60 ArrayTaskId=0 ArrayTaskThrottle=2 JobName=churn.train.churn_classifier "
    "UserId=root(0) GroupId=root(0) MCS_label=N/A Priority=4294901715 Nice=0 Account=(null) QOS=(null) "
    "JobState=FAILED Reason=NonZeroExitCode Dependency=(null) Requeue=1 Restarts=0 BatchFlag=1 Reboot=0 "
    "ExitCode=1:0 RunTime=00:00:59 TimeLimit=02:00:00 AllocNode:Sid=localhost:4824 TRES=cpu=1,node=1,billing=1 "
    "Socks/Node=* NtasksPerN:B:S:C=1:0:*:* CPUs/Task=1 Command=/srv/my run/churn/train.churn_classifier.sbatch "
    "WorkDir=/srv/my run/churn StdErr=/srv/my run/churn/logs/x-60_0.log StdIn=/dev/null "
    "StdOut=/srv/my run/churn/logs/x-60_0.log Power= KillOInInvalidDependent=Yes"
)
PENDING_ARRAY = ("JobId=70 ArrayJobId=70 ArrayTaskId=1-3%2 ArrayTaskThrottle=2 JobName=a JobState=PENDING "
                 "Reason=JobArrayTaskLimit ExitCode=0:0")
JOBCOMP = """\
JobId=14 UserId=root(0) GroupId=root(0) Name=x JobState=COMPLETED Partition=debug ExitCode=0:0
JobId=5 UserId=root(0) GroupId=root(0) Name=churn.validate.customers JobState=FAILED Partition=debug TimeLimit=30 WorkDir=/tmp/a b/churn DerivedExitCode=0:0 ExitCode=1:0
JobId=111 UserId=root(0) Name=churn.train.m JobState=PENDING ArrayJobId=104 ArrayTaskId=0 DerivedExitCode=0:0 ExitCode=0:15
JobId=104 UserId=root(0) Name=churn.train.m JobState=COMPLETED ArrayJobId=104 ArrayTaskId=1 DerivedExitCode=0:0 ExitCode=0:0
JobId=111 UserId=root(0) Name=churn.train.m JobState=COMPLETED ArrayJobId=104 ArrayTaskId=0 DerivedExitCode=0:0 ExitCode=0:0
JobId=15 UserId=root(0) Name=y JobState=CANCELLED ExitCode=0:0
"""


def test_scontrol_line_fields_keep_values_with_spaces_and_equals_signs():
    fields = parse_fields(SCONTROL_TASK)
    assert fields["JobState"] == "FAILED" and fields["ExitCode"] == "1:0" and fields["Reason"] == "NonZeroExitCode"
    assert fields["StdOut"] == "/srv/my run/churn/logs/x-60_0.log"
    assert fields["TRES"] == "cpu=1,node=1,billing=1" and fields["NtasksPerN:B:S:C"] == "1:0:*:*"
    assert fields["Power"] == "" and fields["KillOInInvalidDependent"] == "Yes"


def test_record_key_names_array_tasks_by_array_id_and_index():
    assert record_key(parse_fields(SCONTROL_TASK)) == "60_0"
    assert record_key(parse_fields("JobId=12 JobState=RUNNING")) == "12"
    assert record_key(parse_fields(PENDING_ARRAY)) == "70"


@pytest.mark.parametrize("key, found", [("70_1", True), ("70_3", True), ("70_0", False), ("70_4", False)])
def test_pending_array_record_holds_the_tasks_in_its_range(key, found):
    assert (_pending_array([parse_fields(PENDING_ARRAY)], key) is not None) == found


def test_pending_array_ranges_with_commas():
    fields = parse_fields("JobId=9 ArrayJobId=9 ArrayTaskId=0,2-3 JobState=PENDING")
    assert [_pending_array([fields], f"9_{i}") is not None for i in range(5)] == [True, False, True, True, False]


def test_jobcomp_keeps_the_last_line_of_a_requeued_task_and_ignores_other_jobs(tmp_path):
    path = tmp_path / "jobcomp.log"
    path.write_text(JOBCOMP)
    records = jobcomp_records(path, {"5", "104_0", "104_1", "1"})
    assert {k: (v["JobState"], v["ExitCode"]) for k, v in records.items()} == {
        "5": ("FAILED", "1:0"), "104_0": ("COMPLETED", "0:0"), "104_1": ("COMPLETED", "0:0"),
    }
    assert jobcomp_records(tmp_path / "missing.log", {"5"}) == {}


def _status(log: Path | None) -> JobStatus:
    return JobStatus("validate.d", "5", "FAILED", "NonZeroExitCode", "1:0", str(log) if log else None)


def test_failure_reason_prefers_the_runtimes_error_line(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("INFO reading\nerror: step validate.d failed: data/x.parquet is not Parquet\n"
                   '{"status": "failed"}\nloopc: step validate.d failed with exit code 1\n')
    assert failure_reason(_status(log)) == "error: step validate.d failed: data/x.parquet is not Parquet"
    log.write_text("Traceback\nKilled\n")
    assert failure_reason(_status(log)) == "Killed"
    assert "no log found" in failure_reason(_status(None))


def test_log_file_falls_back_to_the_plan_logs_folder(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "p.validate.d-5.log").write_text("x")
    assert log_file(tmp_path, "5", {}) == str(tmp_path / "logs" / "p.validate.d-5.log")
    assert log_file(tmp_path, "6", {"StdOut": "/nonexistent/6.log"}) is None


def _record(plan_dir: Path, run_id: str, jobs: dict[str, str]) -> None:
    (plan_dir / "submitted").mkdir(parents=True, exist_ok=True)
    (plan_dir / "submitted" / f"{run_id}.json").write_text(json.dumps({"plan": plan_dir.name, "run_id": run_id,
                                                                        "jobs": jobs}))
    (plan_dir / "submitted" / "latest").write_text(run_id + "\n")


def test_plan_dirs_accepts_a_plan_folder_or_the_folder_of_plans(tmp_path):
    _record(tmp_path / "churn", "r1", {"validate.d": "1"})
    _record(tmp_path / "churn_monitor", "r2", {"monitor.w": "2"})
    (tmp_path / "other").mkdir()
    assert plan_dirs(tmp_path) == [tmp_path / "churn", tmp_path / "churn_monitor"]
    assert plan_dirs(tmp_path / "churn") == [tmp_path / "churn"]
    with pytest.raises(SlurmError, match="no submitted Slurm run here.*submit.sh"):
        plan_dirs(tmp_path / "other")


def test_load_submission_latest_or_named_and_a_clear_error_for_unknown_runs(tmp_path):
    _record(tmp_path, "r1", {"validate.d": "1", "train.m.t0": "2_0"})
    _record(tmp_path, "r2", {"validate.d": "3"})
    assert load_submission(tmp_path).jobs == {"validate.d": "3"}
    assert load_submission(tmp_path, "r1").jobs == {"validate.d": "1", "train.m.t0": "2_0"}
    with pytest.raises(SlurmError, match="runs recorded here: r1, r2"):
        load_submission(tmp_path, "r9")


def test_missing_slurm_client_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SlurmError, match="`scontrol` is not on PATH"):
        slurm_command(["scontrol", "show", "job", "1"])
