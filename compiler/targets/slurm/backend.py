"""The Slurm target: one sbatch script per step (one job array per sweep) and a submit.sh that chains them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from loopc.compiler.errors import LoopcError
from loopc.compiler.plan.pipeline import Plan, Step
from loopc.compiler.spec.collector import collector_paused
from loopc.compiler.spec.cron import cron_problem, normalized
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.common import plan_files
from loopc.compiler.targets.jinja import loopc_version, render

SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TRAINING_KINDS = frozenset({"train"})
PREEMPT_WARNING_S = 120
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode's control characters (category Cc, a stable set)


class SlurmTargetError(LoopcError):
    """A plan cannot be written as Slurm jobs (a name Slurm or a shell line cannot carry)."""


@dataclass(frozen=True)
class Job:
    """One sbatch submission: a single step, or every trial of a sweep as one job array."""

    name: str  # step id, or the array name shared by the trials
    steps: tuple[Step, ...]
    deps: tuple[str, ...]  # names of the jobs this one waits for
    concurrency: int | None = None

    @property
    def is_array(self) -> bool:
        return len(self.steps) > 1 or self.steps[0].array is not None

    @property
    def script(self) -> str:
        return f"{self.name}.sbatch"


def sweep_concurrency(plan: Plan, members: tuple[Step, ...]) -> int | None:
    """How many trials may run at once: ``sweep.concurrency`` of the select step ranking them."""
    ids = {step.id for step in members}
    for step in plan.steps:
        trials = step.config.get("trials") if step.kind == "select" else None
        if trials and ids & set(trials):
            return step.config.get("sweep", {}).get("concurrency")
    return None


def plan_jobs(plan: Plan) -> list[Job]:
    """The plan's submissions in dependency order; sweep siblings (same ``array``) become one job."""
    groups: dict[str, list[Step]] = {}
    for step in plan.steps:
        groups.setdefault(step.array or step.id, []).append(step)
    job_of = {step.id: step.array or step.id for step in plan.steps}
    jobs: dict[str, Job] = {}
    for name, members in groups.items():
        members.sort(key=lambda s: (s.array_index or 0, s.id))
        deps = sorted({job_of.get(d, d) for s in members for d in s.deps} - {name})
        jobs[name] = Job(name, tuple(members), tuple(deps),
                         sweep_concurrency(plan, tuple(members)) if members[0].array else None)
    return _job_order(jobs, [job_of[s.id] for s in plan.steps])


def _job_order(jobs: dict[str, Job], first_seen: list[str]) -> list[Job]:
    """Topological order of jobs, ties broken by where each first appears in the plan."""
    rank = {name: i for i, name in reversed(list(enumerate(first_seen)))}
    waiting = {name: set(job.deps) & set(jobs) for name, job in jobs.items()}
    ordered: list[Job] = []
    while waiting:
        ready = sorted((n for n, deps in waiting.items() if not deps), key=rank.__getitem__)
        if not ready:
            raise SlurmTargetError(f"plan has a dependency cycle among jobs {sorted(waiting)}")
        ordered.append(jobs[ready[0]])
        del waiting[ready[0]]
        for deps in waiting.values():
            deps.discard(ready[0])
    return ordered


def slurm_time(seconds: int) -> str:
    """``--time`` text: ``D-HH:MM:SS`` (minutes are Slurm's unit, so at least one minute)."""
    seconds = max(int(seconds), 60)
    days, rest = divmod(seconds, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return f"{days}-{text}" if days else text


def comment_lines(text: str) -> list[str]:
    """Free text as shell comment lines: one per line, control characters blanked."""
    return [CONTROL.sub(" ", line).rstrip() for line in str(text).splitlines()]


SCHEDULED_KINDS = ("train", "monitor", "score")  # plans scrontab starts on their own schedule


def scron_schedule(plan: Plan) -> str | None:
    """The cron line scrontab starts ``plan`` on; None when it has none (a training plan ``@once``:
    submit.sh runs it once)."""
    if plan.kind not in SCHEDULED_KINDS or not plan.schedule or (plan.kind == "train" and plan.schedule == "@once"):
        return None
    return plan.schedule


def plan_problems(plan: Plan) -> list[str]:
    """Names that an sbatch line or job name cannot carry safely; empty when the plan is fine."""
    problems = []
    if not SAFE_NAME.match(plan.pipeline):
        problems.append(f"pipeline name {plan.pipeline!r} must be made of letters, digits, '_', '.', '-'")
    schedule = scron_schedule(plan)
    if schedule is not None and cron_problem(schedule):
        problems.append(f"{plan.kind} plan {plan.name}: {cron_problem(schedule)} (scrontab takes one cron line)")
    if not SAFE_NAME.match(plan.name) or (plan.triggers and not SAFE_NAME.match(plan.triggers)):
        problems.append(f"plan name {plan.name!r} must be made of letters, digits, '_', '.', '-'")
    for step in plan.steps:
        if not SAFE_NAME.match(step.id) or (step.array and not SAFE_NAME.match(step.array)):
            problems.append(f"step id {step.id!r} of plan {plan.name} must be made of letters, digits, '_', '.', '-'")
        for field in ("partition", "account", "qos"):
            value = getattr(step.resources, field)
            if value is not None and (not value or CONTROL.search(value)):
                problems.append(
                    f"resources.{field} of step {step.id} is {value!r}: Slurm names are non-empty and have "
                    "no control characters (newlines, tabs); fix it in the spec's resources"
                )
    return problems


def job_view(plan: Plan, job: Job, options: EmitOptions) -> dict:
    """Everything step.sbatch.j2 needs for one job, decided here so the template only substitutes."""
    first = job.steps[0]
    res = first.resources
    tasks = res.tasks_per_node if first.kind in TRAINING_KINDS else 1
    distributed = first.kind in TRAINING_KINDS and (res.gpus > 1 or res.nodes > 1 or tasks > 1)
    size = len(job.steps) - 1
    descriptions = [line for step in job.steps for line in comment_lines(step.description)]
    return {
        "version": loopc_version(), "plan": plan.name, "pipeline": plan.pipeline, "name": job.name,
        "kind": first.kind, "job_name": f"{plan.name}.{job.name}", "steps": [s.id for s in job.steps],
        "array": f"0-{size}%{job.concurrency}" if job.is_array and job.concurrency else
                 (f"0-{size}" if job.is_array else None),
        "log": "logs/%x-%A_%a.log" if job.is_array else "logs/%x-%j.log",
        "time": slurm_time(res.time_s), "cpus": res.cpus, "memory_mb": res.memory_mb, "nodes": res.nodes,
        "tasks_per_node": tasks,
        "gpus": res.gpus, "partition": res.partition, "account": res.account, "qos": res.qos,
        "training": first.kind in TRAINING_KINDS, "warning_s": PREEMPT_WARNING_S,
        "launch": "srun --kill-on-bad-exit=1 " if distributed else "",
        "retries": res.retries, "retry_delay_s": res.retry_delay_s, "description": descriptions,
        "monitor": first.kind == "monitor", "triggers": plan.triggers,
        "python": options.python, "root": options.root,
    }


def submit_view(plan: Plan, jobs: list[Job], options: EmitOptions) -> dict:
    """Everything submit.sh.j2 needs: jobs in order with their dependencies, the record lines."""
    record = [(step.id, job.name, step.array_index if job.is_array else None)
              for job in jobs for step in job.steps]
    return {
        "version": loopc_version(), "plan": plan.name, "pipeline": plan.pipeline,
        "jobs": [{"name": j.name, "script": j.script, "deps": list(j.deps)} for j in jobs],
        "record": [{"step": s, "job": j, "index": i} for s, j, i in record],
        "description": comment_lines(plan.description), "python": options.python, "root": options.root,
        "schedule": normalized(schedule) if (schedule := scron_schedule(plan)) else None,
    }


def plan_scripts(plan: Plan, options: EmitOptions) -> dict[str, str]:
    """``<plan>/submit.sh``, ``<plan>/<job>.sbatch`` and, for a plan with a schedule (training:
    ``pipeline.schedule``; monitor; scoring), ``schedule.scrontab``."""
    jobs = plan_jobs(plan)
    files = {f"{plan.name}/{job.script}": render("slurm", "step.sbatch.j2", **job_view(plan, job, options))
             for job in jobs}
    view = submit_view(plan, jobs, options)
    files[f"{plan.name}/submit.sh"] = render("slurm", "submit.sh.j2", **view)
    if view["schedule"]:
        files[f"{plan.name}/schedule.scrontab"] = render("slurm", "schedule.scrontab.j2", **view)
    return files


@dataclass(frozen=True)
class SlurmBackend:
    """sbatch scripts chained by ``--dependency=afterok``; sweeps as job arrays; GPUs as ``--gres``."""

    name: str = "slurm"

    def check(self, plans: list[Plan], options: EmitOptions) -> list[str]:
        """Names Slurm cannot take (control characters in partition/account/qos, odd step ids)."""
        return [problem for plan in plans for problem in plan_problems(plan)]

    @collector_paused()
    def render(self, plans: list[Plan], options: EmitOptions) -> dict[str, str]:
        """Per plan: plan.json, steps/<id>.json, one .sbatch per job, submit.sh (+ schedule.scrontab)."""
        problems = self.check(plans, options)
        if problems:
            raise SlurmTargetError("cannot write Slurm jobs:\n  " + "\n  ".join(problems))
        files: dict[str, str] = {}
        for plan in sorted(plans, key=lambda p: p.name):
            files.update(plan_files(plan))
            files.update(plan_scripts(plan, options))
        return dict(sorted(files.items()))


BACKEND = SlurmBackend()
