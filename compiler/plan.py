"""Plan: the validated spec as an ordered DAG of steps, the hand-off to every backend.

The types here are the contract between the planner and the backends
(local, airflow, slurm). ``plan_pipeline`` builds them; backends only read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

PlanKind = Literal["train", "monitor"]
STEP_FORMAT = 1


@dataclass(frozen=True)
class StepResources:
    """Scheduler requests for one step; memory in MiB, times in seconds."""

    cpus: int = 1
    gpus: int = 0
    memory_mb: int = 2048
    time_s: int = 3600
    nodes: int = 1
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    retries: int = 0
    retry_delay_s: int = 60
    pool: str | None = None
    queue: str | None = None
    priority: int | None = None


@dataclass(frozen=True)
class Step:
    """One node of the plan.

    ``id`` is stable and readable (``train.churn_classifier.t1``), unique in its plan,
    made of ``[a-z0-9_.-]``. ``stage`` groups steps for display (Airflow task groups).
    ``config`` is JSON-able and is everything the runtime needs besides upstream outputs.
    ``array`` names a group of sweep siblings (Slurm job arrays); ``array_index`` is this
    step's index in it.
    """

    id: str
    kind: str
    stage: str
    config: dict[str, Any]
    deps: tuple[str, ...]
    fingerprint: str
    resources: StepResources = StepResources()
    cacheable: bool = True
    array: str | None = None
    array_index: int | None = None
    description: str = ""


@dataclass(frozen=True)
class Plan:
    """An ordered DAG of steps for one pipeline; steps are in deterministic topological order."""

    pipeline: str
    kind: PlanKind
    steps: tuple[Step, ...]
    description: str = ""
    owner: str | None = None
    schedule: str | None = None
    tags: tuple[str, ...] = ()
    state_dir: str = ".loopc"
    spec_hash: str = ""
    triggers: str | None = None  # monitor plans: the plan name a breach triggers
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``churn`` for the training plan, ``churn_monitor`` for the monitor plan."""
        return self.pipeline if self.kind == "train" else f"{self.pipeline}_monitor"

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def step_document(plan: Plan, step: Step) -> dict[str, Any]:
    """The JSON document ``python -m loopc.runtime run-step`` reads (see runtime/step.py)."""
    from dataclasses import asdict

    return {
        "format": STEP_FORMAT,
        "pipeline": plan.pipeline,
        "plan": plan.name,
        "id": step.id,
        "kind": step.kind,
        "stage": step.stage,
        "deps": list(step.deps),
        "fingerprint": step.fingerprint,
        "cacheable": step.cacheable,
        "state_dir": plan.state_dir,
        "spec_hash": plan.spec_hash,
        "resources": asdict(step.resources),
        "config": step.config,
    }


def step_json(plan: Plan, step: Step) -> str:
    """Deterministic text of a step document: sorted keys, two-space indent, LF, trailing newline."""
    return json.dumps(step_document(plan, step), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
