"""The steps of a pipeline and the config each step kind carries (docs/internals.md, "Plan and steps")."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from loopc.compiler.plan.memo import ByIdentity, once
from loopc.compiler.plan.sweeps import apply_point, select_sweep, trial_points
from loopc.compiler.spec.models import Dataset, Spec


@dataclass(frozen=True)
class StepSpec:
    """A step before it is placed in the graph: what it is, what it reads, what it needs."""

    id: str
    kind: str
    config: dict[str, Any]
    deps: tuple[str, ...] = ()
    array: str | None = None
    array_index: int | None = None
    description: str = ""


class Dumps:
    """``model_dump(mode="json")`` of each spec model made once per spec: the step configs holding it share the dict
    (and ``step_fingerprint`` its canonical text). Step configs are never changed once planned."""

    def __init__(self) -> None:
        self._made: ByIdentity = {}

    def __call__(self, model: BaseModel) -> Any:
        return once(self._made, model, lambda m: m.model_dump(mode="json"))

    def columns(self, dataset: Dataset) -> dict[str, Any]:
        """``{column name: dump}`` of a dataset's columns: the ``columns`` of the dataset's dump."""
        return self(dataset)["columns"]


def feature_columns(spec: Spec) -> list[str]:
    """Dataset columns the model's features read, in feature order, each once."""
    columns = spec.datasets[spec.model.dataset].columns
    seen: list[str] = []
    for name in spec.model.features:
        feature = spec.features[name]
        used = [feature.column] if feature.column else _expr_names(feature.expr or "")
        seen.extend(c for c in used if c in columns and c not in seen)
    return seen


def _expr_names(expr: str) -> list[str]:
    """Names an expression reads, in source order."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expr)
    names = [node for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return [node.id for node in sorted(names, key=lambda n: (n.lineno, n.col_offset))]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _profile_columns(spec: Spec) -> list[str]:
    """Columns the reference profile must cover: feature inputs plus columns monitors name."""
    extra = [c for m in spec.monitors.values() if m.data_drift and m.data_drift.columns for c in m.data_drift.columns]
    return _unique(feature_columns(spec) + extra)


def data_steps(spec: Spec, dumps: Dumps) -> list[StepSpec]:
    """validate.D and split.D for the model's dataset."""
    name = spec.model.dataset
    dataset = spec.datasets[name]
    return [
        StepSpec(f"validate.{name}", "validate", {"dataset_name": name, "dataset": dumps(dataset)},
                 description=f"Read dataset {name}, enforce its schema and checks, fingerprint it"),
        StepSpec(f"split.{name}", "split",
                 {"dataset_name": name, "split": dumps(dataset.split), "columns": dumps.columns(dataset)},
                 (f"validate.{name}",), description=f"Split dataset {name} into train/valid/test"),
    ]


def features_step(spec: Spec, dumps: Dumps) -> StepSpec:
    model, dataset = spec.model, spec.datasets[spec.model.dataset]
    config = {
        "model_name": model.name, "dataset_name": model.dataset, "task": model.task, "label": model.label,
        "columns": dumps.columns(dataset),
        "features": {name: dumps(spec.features[name]) for name in model.features},
        "feature_order": list(model.features),  # step JSON sorts keys: this keeps model.features order
        "profile_columns": _profile_columns(spec),
    }
    return StepSpec(f"features.{model.name}", "features", config, (f"split.{model.dataset}",),
                    description=f"Fit the features of {model.name} on the train split; reference profile")


def train_steps(spec: Spec, cli_points: list[dict[str, Any]] | None, source: str, dumps: Dumps) -> list[StepSpec]:
    """train.M, or train.M.t0..tK and select.M when the model or the command line sweeps.

    Without a sweep the trained model is the spec's, and its config holds the spec model's shared dump when equal.
    """
    model = spec.model
    features = (f"features.{model.name}",)
    points = trial_points(model, cli_points, source)
    if not points:
        trained = apply_point(model, {}, source)[0]
        config = {"model": dumps(model) if trained == dumps(model) else trained, "trial": None, "sweep_point": {}}
        return [StepSpec(f"train.{model.name}", "train", config, features, description=f"Train {model.name}")]
    trials = []
    for index, point in enumerate(points):
        trial_model, canonical = apply_point(model, point, source)
        config = {"model": trial_model, "trial": index, "sweep_point": canonical}
        trials.append(StepSpec(f"train.{model.name}.t{index}", "train", config, features, f"train.{model.name}",
                               index, f"Train {model.name}, sweep trial {index}: {canonical}"))
    ids = [t.id for t in trials]
    select = StepSpec(f"select.{model.name}", "select", {"sweep": select_sweep(model, points), "trials": ids},
                      features + tuple(ids),  # features: select removes the matrices its trials shared
                      description=f"Pick the best of {len(ids)} trials of {model.name}")
    return trials + [select]


def decision_steps(spec: Spec, best: str, dumps: Dumps) -> list[StepSpec]:
    """evaluate.M, gate.M and register.M; ``best`` is the step holding the trained model."""
    model, m = spec.model, spec.model.name
    return [
        StepSpec(f"evaluate.{m}", "evaluate", {"model": dumps(model), "gate": dumps(spec.gate)},
                 (f"features.{m}", best), description=f"Metrics, slices and fairness of {m} on {spec.gate.split}"),
        StepSpec(f"gate.{m}", "gate", {"model_name": m, "task": model.task, "gate": dumps(spec.gate)},
                 (f"evaluate.{m}",), description=f"Decide whether {m} may replace the champion"),
        StepSpec(f"register.{m}", "register",
                 {"pipeline": dumps(spec.pipeline), "model": dumps(model), "dataset_names": [model.dataset]},
                 (f"gate.{m}", f"evaluate.{m}", f"features.{m}", best, f"validate.{model.dataset}"),
                 description=f"Register a new version of {m} with lineage and model card"),
    ]


def deploy_steps(spec: Spec, dumps: Dumps) -> list[StepSpec]:
    """shadow.M (when enabled) and promote.M."""
    m, steps = spec.model.name, []
    if spec.deploy.shadow.enabled:
        steps.append(StepSpec(f"shadow.{m}", "shadow",
                              {"model_name": m, "task": spec.model.task, "shadow": dumps(spec.deploy.shadow)},
                              (f"register.{m}", f"features.{m}", f"gate.{m}"),  # gate: the champion's scores
                              description=f"Score the same rows with challenger and champion of {m}"))
    approval = spec.deploy.approval == "manual" or spec.pipeline.risk_class == "high"
    after = [steps[0].id] if steps else []
    steps.append(StepSpec(f"promote.{m}", "promote",
                          {"model_name": m, "pipeline": dumps(spec.pipeline), "deploy": dumps(spec.deploy),
                           "human_approval_required": approval},
                          tuple(after + [f"gate.{m}", f"register.{m}"]),
                          description=f"Move the champion alias of {m} when gate, shadow and approval allow"))
    return steps


def training_steps(
    spec: Spec, cli_points: list[dict[str, Any]] | None, source: str, dumps: Dumps | None = None
) -> list[StepSpec]:
    """Every step of the training plan, data to promotion (deps name the data each step reads)."""
    dumps = dumps or Dumps()
    trained = train_steps(spec, cli_points, source, dumps)
    return (data_steps(spec, dumps) + [features_step(spec, dumps)] + trained
            + decision_steps(spec, trained[-1].id, dumps) + deploy_steps(spec, dumps))


def monitor_steps(spec: Spec, dumps: Dumps | None = None) -> list[StepSpec]:
    """monitor.N per monitor, in name order."""
    dumps = dumps or Dumps()
    common = {
        "model": dumps(spec.model), "columns": dumps.columns(spec.datasets[spec.model.dataset]),
        "feature_columns": feature_columns(spec), "pipeline": dumps(spec.pipeline),
    }
    return [
        StepSpec(f"monitor.{name}", "monitor", {"monitor_name": name, "monitor": dumps(monitor), **common},
                 description=f"Drift and quality of live rows for {spec.model.name} ({name})")
        for name, monitor in sorted(spec.monitors.items())
    ]


def scoring_steps(spec: Spec, dumps: Dumps | None = None) -> list[StepSpec]:
    """score.M: the model behind ``scoring.alias`` (looked up when it runs) scores ``scoring.source``."""
    scoring, model = spec.scoring, spec.model
    config = {"model_name": model.name, "scoring": (dumps or Dumps())(scoring)}
    return [StepSpec(f"score.{model.name}", "score", config,
                     description=f"Score {scoring.source.path} with {model.name}@{scoring.alias}; "
                                 f"predictions to {scoring.output}")]
