"""Plan: the validated spec as an ordered DAG of steps, the hand-off to every backend.

The types here are the contract between the planner and the backends
(local, airflow, slurm). ``plan_pipeline`` builds them; backends only read them.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Literal

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.plan.fingerprint import Texts, step_fingerprint
from loopc.compiler.plan.memo import ByIdentity, once
from loopc.compiler.plan.pretty import Written, pretty_json
from loopc.compiler.plan.steps import Dumps, StepSpec, monitor_steps, scoring_steps, training_steps
from loopc.compiler.spec.models import Resources, Spec, parse_duration, parse_memory_mb

PlanKind = Literal["train", "monitor", "score"]
STEP_FORMAT = 1


@dataclass(frozen=True)
class StepResources:
    """Scheduler requests for one step; memory in MiB, times in seconds."""

    cpus: int = 1
    gpus: int = 0
    memory_mb: int = 2048
    time_s: int = 3600
    nodes: int = 1
    tasks_per_node: int = 1
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    retries: int = 0
    retry_delay_s: int = 60
    pool: str | None = None
    queue: str | None = None
    priority: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Field name -> value (what ``dataclasses.asdict`` gives, without its deep copies).

        ``tasks_per_node`` appears only when it is not 1, so documents of one-task steps are unchanged.
        """
        values = {name: getattr(self, name) for name in _RESOURCE_FIELDS}
        if values["tasks_per_node"] == 1:
            del values["tasks_per_node"]
        return values


_RESOURCE_FIELDS = tuple(f.name for f in fields(StepResources))


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
    store: str | None = None  # artifact store URL (None: the state folder)
    registry: str | None = None  # registry URL (None: registry.db in the state folder)
    triggers: str | None = None  # monitor plans: the plan name a breach triggers
    meta: dict[str, Any] = field(default_factory=dict)
    texts: dict[tuple[str, ...], tuple[object, str]] = field(default_factory=dict, init=False, compare=False,
                                                             repr=False)
    """Documents of this plan rendered once for every target: key -> (what it was made from, text).
    Not an init field: ``dataclasses.replace`` (another store, say) starts an empty one."""
    value_texts: ByIdentity = field(default_factory=dict, compare=False, repr=False)
    """``pretty_json`` of step config values (``memo.once``).
    The plans of one spec share one (their configs share the dumps of the spec's models)."""

    @property
    def name(self) -> str:
        """``churn`` for the training plan, ``churn_monitor`` / ``churn_score`` for the monitor / scoring plan."""
        return self.pipeline if self.kind == "train" else f"{self.pipeline}_{self.kind}"

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)


def step_document(plan: Plan, step: Step) -> dict[str, Any]:
    """The JSON document ``python -m loopc.runtime run-step`` reads (see runtime/step.py)."""
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
        "resources": step.resources.to_dict(),
        "config": step.config,
        **{name: value for name, value in (("store", plan.store), ("registry", plan.registry)) if value},
    }


def step_json(plan: Plan, step: Step) -> str:
    """Deterministic text of a step document: sorted keys, two-space indent, LF, trailing newline.

    Each list or dict in the config is written once for every plan sharing ``plan.value_texts``.
    """
    def render() -> str:
        document = step_document(plan, step)
        document["config"] = {key: Written(once(plan.value_texts, value, pretty_json)) if type(value) in (dict, list)
                              else value for key, value in step.config.items()}
        return pretty_json(document) + "\n"

    return rendered_once(plan, ("step", step.id), step, render)


def rendered_once(plan: Plan, key: tuple[str, ...], source: object, render: Callable[[], str]) -> str:
    """``render()``, or the text it gave before for ``key`` of this plan from the same ``source`` object."""
    known = plan.texts.get(key)
    if known is not None and known[0] is source:
        return known[1]
    text = render()
    plan.texts[key] = (source, text)
    return text


# --------------------------------------------------------------------------- the planner

STAGES = {
    "validate": "data", "split": "data", "features": "features", "train": "train", "select": "train",
    "evaluate": "evaluate", "gate": "evaluate", "register": "deploy", "shadow": "deploy",
    "promote": "deploy", "monitor": "monitor", "score": "score",
}
NOT_CACHEABLE = frozenset({"gate", "register", "shadow", "promote", "monitor", "score"})
_RESOURCE_UNITS = {"memory": ("memory_mb", parse_memory_mb), "time": ("time_s", parse_duration),
                   "retry_delay": ("retry_delay_s", parse_duration)}


def natural_key(step_id: str) -> tuple[tuple[int, str], ...]:
    """Sort key that puts ``t2`` before ``t10``: digit runs compare as numbers."""
    return tuple((1, f"{int(part):020d}") if part.isdigit() else (0, part)
                 for part in re.split(r"(\d+)", step_id) if part)


class StepGraph:
    """The steps of a plan as a graph: step ids as nodes, an edge from each dep to its step.

    Kept as plain dicts (nodes in the order first named, as a step or a dep; successors in edge order);
    networkx builds a DiGraph of them only to draw (``edges(reduced=True)``) or to name a cycle.
    """

    def __init__(self, source: str = "<spec>"):
        self._steps: dict[str, StepSpec | None] = {}
        self._successors: dict[str, dict[str, None]] = {}
        self._source = source

    def add(self, step: StepSpec) -> None:
        if self._steps.get(step.id) is not None:
            raise SpecErrors([SpecError(self._source, 0, 0, "LPC704", step.id, f"step id '{step.id}' is planned twice")])
        self._steps[step.id] = step
        self._successors.setdefault(step.id, {})
        for dep in step.deps:
            self._steps.setdefault(dep, None)
            self._successors.setdefault(dep, {})[step.id] = None

    def order(self) -> list[StepSpec]:
        """Steps in lexicographic topological order (networkx's ``lexicographical_topological_sort`` by
        ``natural_key``, ties by node order); SpecErrors naming the cycle if there is one."""
        missing = sorted(n for n, step in self._steps.items() if step is None)
        if missing:
            users = sorted(self._successors[missing[0]])
            raise SpecErrors([SpecError(self._source, 0, 0, "LPC705", users[0],
                                        f"step '{users[0]}' depends on unknown step '{missing[0]}'")])
        index = {node: i for i, node in enumerate(self._steps)}
        waiting = {node: 0 for node in self._steps}
        for children in self._successors.values():
            for child in children:
                waiting[child] += 1
        ready = [(natural_key(node), index[node], node) for node, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        ordered: list[StepSpec] = []
        while ready:
            node = heapq.heappop(ready)[2]
            ordered.append(self._steps[node])  # type: ignore[arg-type]  (every node is a step: checked above)
            for child in self._successors[node]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (natural_key(child), index[child], child))
        if len(ordered) < len(self._steps):
            raise self._cycle_error()
        return ordered

    def _cycle_error(self) -> SpecErrors:
        import networkx as nx  # only to name the cycle

        cycle = [u for u, _ in nx.find_cycle(self._digraph())]
        path = " -> ".join([*cycle, cycle[0]])
        return SpecErrors([SpecError(self._source, 0, 0, "LPC701", cycle[0], f"Cycle: {path}",
                                     "remove one of these dependencies")])

    def _digraph(self):
        """The networkx DiGraph of these nodes and edges, in the same order."""
        import networkx as nx  # imported on first use: planning never pays for it

        graph = nx.DiGraph()
        graph.add_nodes_from(self._steps)
        graph.add_edges_from((node, child) for node, children in self._successors.items() for child in children)
        return graph

    def edges(self, reduced: bool = False) -> list[tuple[str, str]]:
        """(dep, step) pairs; ``reduced`` drops edges implied by longer paths (for drawing)."""
        if reduced:
            import networkx as nx

            pairs = list(nx.transitive_reduction(self._digraph()).edges())
        else:
            pairs = [(node, child) for node, children in self._successors.items() for child in children]
        return sorted(pairs, key=lambda edge: (natural_key(edge[1]), natural_key(edge[0])))


def plan_edges(plan: Plan, reduced: bool = False) -> list[tuple[str, str]]:
    """The (dep, step) edges of a plan in plan order (by step, then dep); see ``StepGraph.edges``."""
    graph = StepGraph(plan.name)
    for step in plan.steps:
        graph.add(StepSpec(step.id, step.kind, step.config, step.deps))
    position = {step.id: index for index, step in enumerate(plan.steps)}
    return sorted(graph.edges(reduced), key=lambda edge: (position[edge[1]], position[edge[0]]))


def step_resources(*layers: Resources) -> StepResources:
    """StepResources from spec Resources; later layers override earlier ones where set."""
    values: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.model_dump(exclude_none=True).items():
            key, convert = _RESOURCE_UNITS.get(name, (name, lambda v: v))
            values[key] = convert(value)
        if getattr(layer, "tasks_per_node", None) is not None:  # excluded from dumps (and the spec hash)
            values["tasks_per_node"] = layer.tasks_per_node
    return StepResources(**values)


@dataclass(frozen=True)
class _Planning:
    """What every plan of one spec shares while it is placed: resources, the step config dumps, their texts."""

    source: str
    defaults: StepResources
    train: StepResources
    dumps: Dumps = field(default_factory=Dumps)
    texts: Texts = field(default_factory=dict)


def _place(steps: list[StepSpec], planning: _Planning) -> tuple[Step, ...]:
    """Order the steps, attach stage, resources, cacheability and fingerprints."""
    graph = StepGraph(planning.source)
    for step in steps:
        graph.add(step)
    defaults, train, texts = planning.defaults, planning.train, planning.texts
    done: dict[str, Step] = {}
    for item in graph.order():
        deps = (done[d].fingerprint for d in item.deps)
        fingerprint = step_fingerprint(item.kind, item.config, deps, STEP_FORMAT, texts)
        done[item.id] = Step(
            id=item.id, kind=item.kind, stage=STAGES[item.kind], config=item.config, deps=item.deps,
            fingerprint=fingerprint, resources=train if item.kind == "train" else defaults,
            cacheable=item.kind not in NOT_CACHEABLE, array=item.array, array_index=item.array_index,
            description=item.description,
        )
    return tuple(done.values())


def plan_pipeline(
    spec: Spec, *, spec_hash: str, sweep_points: list[dict[str, Any]] | None = None, source: str = "<spec>"
) -> list[Plan]:
    """The training plan, plus ``<name>_monitor`` (triggers the training plan) when the spec has monitors.

    The monitor plan runs on the schedule of its first monitor (by name) that has one.
    ``sweep_points``: CLI multirun points ({"model.optimizer.lr": 0.01}); each becomes a train trial,
    crossed with ``model.sweep``. ``source`` names the spec file in errors.
    """
    pipeline = spec.pipeline
    common = {"description": pipeline.description, "owner": pipeline.owner, "tags": tuple(pipeline.tags),
              "state_dir": pipeline.state_dir, "spec_hash": spec_hash, "store": pipeline.store,
              "registry": pipeline.registry}
    planning = _Planning(source, step_resources(pipeline.resources),
                         step_resources(pipeline.resources, spec.model.resources))
    common["value_texts"] = {}  # one for the spec's plans, whose configs share dumps
    dumps = planning.dumps
    plans = [Plan(pipeline.name, "train", _place(training_steps(spec, sweep_points, source, dumps), planning),
                  schedule=pipeline.schedule, **common)]
    if spec.monitors:
        schedule = next((m.schedule for _, m in sorted(spec.monitors.items()) if m.schedule), None)
        plans.append(Plan(pipeline.name, "monitor", _place(monitor_steps(spec, dumps), planning),
                          schedule=schedule, triggers=plans[0].name, **common))
    if spec.scoring is not None:
        plans.append(Plan(pipeline.name, "score", _place(scoring_steps(spec, dumps), planning),
                          schedule=spec.scoring.schedule, **common))
    return plans
