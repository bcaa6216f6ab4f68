"""What Slurm knows about the jobs of a submitted plan: records, scontrol/jobcomp parsing, log tails."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from loopc.compiler.errors import LoopcError

FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT", "REVOKED",
})
FAILED_STATES = FINAL_STATES - {"COMPLETED", "CANCELLED"}
DEFAULT_JOBCOMP = "/var/log/slurm/jobcomp.log"
_FIELD = re.compile(r"(?:^|\s)([A-Z][A-Za-z0-9:/_]*)=")
_UNREACHABLE = "Unable to contact slurm controller"


class SlurmError(LoopcError):
    """Slurm cannot be asked (no controller, no client commands) or a record is missing."""


@dataclass(frozen=True)
class JobStatus:
    """One step's job as Slurm reports it."""

    step: str
    job_id: str  # "12", or "17_0" for task 0 of array job 17
    state: str
    reason: str
    exit_code: str
    log: str | None = None
    source: str = "scontrol"  # scontrol | jobcomp | none

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Submission:
    """A submitted run of one plan folder, as submit.sh recorded it."""

    plan_dir: Path
    plan: str
    run_id: str
    submitted_at: str
    jobs: dict[str, str]  # step id -> job id


def parse_fields(line: str) -> dict[str, str]:
    """``Key=Value`` pairs of one ``scontrol show job -o`` (or jobcomp) line; values may hold spaces."""
    matches = list(_FIELD.finditer(line))
    fields = {}
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following else len(line)
        fields[match.group(1)] = line[match.end():end].strip()
    return fields


def record_key(fields: dict[str, str]) -> str:
    """``17_0`` for an array task, else the plain job id."""
    task = fields.get("ArrayTaskId", "")
    if fields.get("ArrayJobId") and task.isdigit():
        return f"{fields['ArrayJobId']}_{task}"
    return fields.get("JobId", "")


def plan_dirs(path: Path) -> list[Path]:
    """The plan folders under ``path`` that were submitted (``path`` itself, or its subfolders)."""
    if (path / "submitted" / "latest").is_file():
        return [path]
    found = sorted(p for p in path.iterdir() if (p / "submitted" / "latest").is_file()) if path.is_dir() else []
    if not found:
        raise SlurmError(
            f"{path}: no submitted Slurm run here; compile with `loopc compile SPEC --target slurm -o DIR`, "
            "submit with `bash DIR/<plan>/submit.sh`, then give DIR or DIR/<plan>"
        )
    return found


def load_submission(plan_dir: Path, run_id: str | None = None) -> Submission:
    """The record of ``run_id`` (default: the latest submission) in ``plan_dir/submitted/``."""
    run_id = run_id or (plan_dir / "submitted" / "latest").read_text(encoding="utf-8").strip()
    path = plan_dir / "submitted" / f"{run_id}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        known = sorted(p.stem for p in (plan_dir / "submitted").glob("*.json"))
        raise SlurmError(f"{path}: cannot read the submission record ({exc}); runs recorded here: "
                         f"{', '.join(known) or 'none'}") from None
    return Submission(plan_dir, data["plan"], data["run_id"], data.get("submitted_at", ""), dict(data["jobs"]))


def slurm_command(args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
    """Run a Slurm client command; SlurmError when it is missing or the controller does not answer."""
    if shutil.which(args[0]) is None:
        raise SlurmError(f"`{args[0]}` is not on PATH: run this on a Slurm login node (or install slurm-client)")
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"`{' '.join(args)}` did not answer in {timeout:.0f} s; is slurmctld up? (scontrol ping)")
    if _UNREACHABLE in done.stderr:
        raise SlurmError(f"{_UNREACHABLE}: `{' '.join(args)}` said: {done.stderr.strip()}; "
                         "check that slurmctld runs (`scontrol ping`) and that SLURM_CONF points at its config")
    return done


def scontrol_jobs(base_id: str) -> list[dict[str, str]]:
    """Every record ``scontrol show job -o`` has for a job (one per array task); [] once it aged out."""
    done = slurm_command(["scontrol", "show", "job", "-o", base_id])
    if done.returncode != 0:
        if "Invalid job id" in done.stderr:
            return []
        raise SlurmError(f"`scontrol show job {base_id}` failed: {done.stderr.strip()}")
    return [parse_fields(line) for line in done.stdout.splitlines() if line.strip()]


def jobcomp_path() -> Path:
    """Where the controller writes finished jobs (``JobCompLoc`` with jobcomp/filetxt)."""
    if os.environ.get("LOOPC_SLURM_JOBCOMP"):
        return Path(os.environ["LOOPC_SLURM_JOBCOMP"])
    done = slurm_command(["scontrol", "show", "config"])
    config = dict(re.findall(r"^(\w+)\s*=\s*(.*?)\s*$", done.stdout, re.M))
    if config.get("JobCompType") == "jobcomp/filetxt" and config.get("JobCompLoc"):
        return Path(config["JobCompLoc"])
    return Path(DEFAULT_JOBCOMP)


def jobcomp_records(path: Path, wanted: set[str]) -> dict[str, dict[str, str]]:
    """Last jobcomp line per wanted job key (a requeued job has several; the last one counts)."""
    records: dict[str, dict[str, str]] = {}
    needles = {f"={key.split('_')[0]} " for key in wanted}  # a cheap test before parsing a line
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if any(needle in line for needle in needles):
                    fields = parse_fields(line)
                    if (key := record_key(fields)) in wanted:
                        records[key] = fields
    except OSError:
        return {}
    return records


def _pending_array(records: list[dict[str, str]], key: str) -> dict[str, str] | None:
    """The not-yet-split record (``ArrayTaskId=1-3%2``) that still holds array task ``key``."""
    task = int(key.split("_")[1])
    for fields in records:
        spec = fields.get("ArrayTaskId", "").split("%")[0]
        for part in spec.split(","):
            low, _, high = part.partition("-")
            if low.isdigit() and int(low) <= task <= int(high or low):
                return fields
    return None


def job_records(job_ids: list[str]) -> dict[str, tuple[dict[str, str], str]]:
    """Job key -> (fields, source) from scontrol, then the jobcomp log for records that aged out."""
    found: dict[str, tuple[dict[str, str], str]] = {}
    for base in sorted({key.split("_")[0] for key in job_ids}, key=int):
        records = scontrol_jobs(base)
        by_key = {record_key(fields): fields for fields in records}
        for key in (k for k in job_ids if k.split("_")[0] == base):
            fields = by_key.get(key) or (_pending_array(records, key) if "_" in key else None)
            if fields:
                found[key] = (fields, "scontrol")
    missing = {key for key in job_ids if key not in found}
    if missing:
        for key, fields in jobcomp_records(jobcomp_path(), missing).items():
            found[key] = (fields, "jobcomp")
    return found


def log_file(plan_dir: Path, job_id: str, fields: dict[str, str]) -> str | None:
    """The job's log: scontrol's StdOut, else logs/<name>-<id>.log in the plan folder."""
    if fields.get("StdOut") and Path(fields["StdOut"]).is_file():
        return fields["StdOut"]
    matches = sorted((plan_dir / "logs").glob(f"*-{job_id}.log"))
    return str(matches[-1]) if matches else None


def submission_status(submission: Submission) -> list[JobStatus]:
    """Every recorded step with its job's state, reason, exit code and log, in submission order."""
    records = job_records(list(submission.jobs.values()))
    statuses = []
    for step, job_id in submission.jobs.items():
        fields, source = records.get(job_id, ({}, "none"))
        statuses.append(JobStatus(
            step=step, job_id=job_id, state=fields.get("JobState", "UNKNOWN"),
            reason=fields.get("Reason", "") if fields.get("Reason") != "None" else "",
            exit_code=fields.get("ExitCode", ""), log=log_file(submission.plan_dir, job_id, fields),
            source=source,
        ))
    return statuses


def log_tail(path: str | None, lines: int = 12) -> list[str]:
    """The last ``lines`` non-empty lines of a log (empty when there is none)."""
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def failure_reason(status: JobStatus) -> str:
    """Why a step failed, in one line: the runtime's last ``error:`` line, else a ``failed`` line, else the last."""
    tail = [line.strip() for line in log_tail(status.log, 200)]
    for pick in (lambda l: l.startswith("error:"), lambda l: "failed" in l, lambda l: True):
        chosen = [line for line in tail if pick(line)]
        if chosen:
            return chosen[-1]
    return f"{status.state} (exit code {status.exit_code}); no log found"
