"""What a change to a spec path means, as a table: spec-path pattern -> class and topic.

Classes, most conservative first:

    retrain      the model is trained again (data source, schema, checks, split, features, model)
    re-gate      existing candidates are evaluated and gated again; nothing retrains
    operational  when and where steps run, and the monitors (schedules, resources, targets)
    metadata     who owns the loop and how it is described (owner, description, tags)

Patterns are dotted spec paths: ``*`` is any key of a user-named mapping (a dataset, a column),
``[*]`` any list index, a trailing ``**`` the path itself and anything below it (values the spec
does not type). Every leaf field of the Spec model has exactly one row (tests walk the model);
a path no row covers is ``retrain``, the most conservative class.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from loopc.compiler.diff.compare import SpecPath

CLASSES = ("retrain", "re-gate", "operational", "metadata")
DEFAULT_CLASS = "retrain"


@dataclass(frozen=True)
class Rule:
    pattern: str
    klass: str
    topic: str


_R, _G, _O, _M = CLASSES
_RESOURCES = ("cpus", "gpus", "memory", "time", "nodes", "tasks_per_node", "partition", "account", "qos", "retries",
              "retry_delay", "pool", "queue", "priority")
_TRANSFORM = ("kind", "offset", "min", "max", "boundaries", "quantiles", "vocabulary", "max_categories",
              "min_frequency", "buckets", "strategy", "value")
_CHECK = ("kind", "min", "max", "column", "max_age", "name", "expr", "min_fraction")
_SOURCE = ("path", "format", "partitioning", "options.**")

# (pattern, class, topic). The data of this module; one row per leaf field of the Spec model.
TABLE: tuple[tuple[str, str, str], ...] = (
    ("loopc", _R, "spec version"),
    ("pipeline.name", _R, "pipeline identity"),
    ("pipeline.owner", _M, "owner"),
    ("pipeline.description", _M, "description"),
    ("pipeline.schedule", _O, "schedule"),
    ("pipeline.risk_class", _M, "governance"),
    ("pipeline.intended_use", _M, "governance"),
    ("pipeline.targets", _O, "targets"),
    ("pipeline.tags", _M, "tags"),
    ("pipeline.state_dir", _R, "state directory (no cached artifacts, no champion there)"),
    ("pipeline.store", _R, "artifact store (no cached artifacts there)"),
    ("pipeline.registry", _R, "model registry (no champion there)"),
    *((f"pipeline.resources.{f}", _O, "resources") for f in _RESOURCES),
    ("pipeline.secrets.**", _O, "secrets"),
    ("datasets.*.description", _M, "description"),
    *((f"datasets.*.source.{f}", _R, "data source") for f in _SOURCE),
    *((f"datasets.*.columns.*.{f}", _R, "schema") for f in ("type", "nullable", "unique", "min", "max", "allowed")),
    ("datasets.*.columns.*.description", _M, "description"),
    *((f"datasets.*.checks[*].{f}", _R, "data checks") for f in _CHECK),
    *((f"datasets.*.split.{f}", _R, "split") for f in ("method", "key", "column", "seed", "train", "valid", "test")),
    ("features.*.column", _R, "feature"),
    ("features.*.expr", _R, "feature"),
    *((f"features.*.transforms[*].{f}", _R, "feature") for f in _TRANSFORM),
    ("features.*.description", _M, "description"),
    ("model.name", _R, "model identity"),
    *((f"model.{f}", _R, "model inputs") for f in ("task", "dataset", "label", "features")),
    *((f"model.architecture.{f}", _R, "architecture") for f in ("kind", "hidden", "activation", "dropout")),
    *((f"model.optimizer.{f}", _R, "optimizer") for f in ("name", "lr", "params.**", "clip_norm")),
    *((f"model.schedule.{f}", _R, "optimizer") for f in ("kind", "warmup_steps", "decay_rate")),
    *((f"model.training.{f}", _R, "training") for f in ("epochs", "batch_size", "seed", "checkpoint_every",
                                                        "class_weight")),
    *((f"model.training.early_stopping.{f}", _R, "training") for f in ("metric", "patience", "min_delta")),
    ("model.precision", _R, "training"),
    *((f"model.resources.{f}", _O, "resources") for f in _RESOURCES),
    *((f"model.sweep.{f}", _R, "sweep") for f in ("parameters.**", "metric", "direction", "concurrency")),
    ("model.description", _M, "description"),
    ("gate.split", _G, "gate split"),
    *((f"gate.thresholds[*].{f}", _G, "thresholds") for f in ("metric", "min", "max")),
    *((f"gate.champion[*].{f}", _G, "champion comparison") for f in ("metric", "min_delta", "relative")),
    *((f"gate.slices[*].{f}", _G, "slices") for f in ("column", "metric", "min", "max", "min_rows")),
    *((f"gate.fairness[*].{f}", _G, "fairness") for f in ("column", "metric", "max")),
    ("gate.no_champion", _G, "gate policy"),
    ("gate.override.allowed", _G, "gate policy"),
    ("gate.override.require_reason", _G, "gate policy"),
    *((f"deploy.shadow.{f}", _G, "shadow") for f in ("enabled", "min_rows", "min_agreement", "max_metric_drop.**",
                                                              "regression_tolerance")),
    ("deploy.approval", _G, "approval"),
    *((f"monitors.*.source.{f}", _O, "monitor") for f in _SOURCE),
    *((f"monitors.*.{f}", _O, "monitor") for f in ("schedule", "window", "time_column", "min_rows",
                                                    "max_null_rate")),
    *((f"monitors.*.data_drift.{f}", _O, "monitor") for f in ("columns", "methods", "psi_max", "js_max",
                                                               "p_value", "min_drifted")),
    *((f"monitors.*.prediction_drift.{f}", _O, "monitor") for f in ("method", "max")),
    *((f"monitors.*.performance[*].{f}", _O, "monitor") for f in ("metric", "min", "max")),
    *((f"monitors.*.action.{f}", _O, "monitor") for f in ("on_breach", "cooldown")),
    *((f"monitors.*.labels.source.{f}", _O, "monitor") for f in _SOURCE),
    *((f"monitors.*.labels.{f}", _O, "monitor") for f in ("predictions", "keys", "window", "min_rows",
                                                           "max_drop.*")),
    *((f"scoring.source.{f}", _O, "scoring") for f in _SOURCE),
    *((f"scoring.{f}", _O, "scoring") for f in ("output", "schedule", "alias", "keys", "write")),
)
RULES: tuple[Rule, ...] = tuple(Rule(*row) for row in TABLE)


def pattern_parts(pattern: str) -> tuple[str, ...]:
    """``gate.thresholds[*].min`` -> ``("gate", "thresholds", "[*]", "min")``."""
    return tuple(part for segment in pattern.split(".") for part in _split_index(segment))


def _split_index(segment: str) -> tuple[str, ...]:
    return (segment[:-3], "[*]") if segment.endswith("[*]") else (segment,)


def _part_matches(part: str, element: str | int) -> bool:
    if part == "[*]":
        return isinstance(element, int)
    return isinstance(element, str) and part in ("*", element)


@lru_cache(maxsize=None)
def _compiled() -> tuple[tuple[tuple[str, ...], Rule], ...]:
    return tuple((pattern_parts(rule.pattern), rule) for rule in RULES)


def matches(parts: tuple[str, ...], path: SpecPath, subtree: bool = False) -> bool:
    """Whether pattern ``parts`` covers ``path`` (with ``subtree``: some path below it)."""
    for index, element in enumerate(path):
        if index < len(parts) and parts[index] == "**":
            return True
        if index >= len(parts) or not _part_matches(parts[index], element):
            return False
    return len(parts) == len(path) or parts[len(path)] == "**" or subtree


def explicit_rules(path: SpecPath) -> list[Rule]:
    """The rows whose pattern names ``path`` itself."""
    return [rule for parts, rule in _compiled() if matches(parts, path)]


def classify(path: SpecPath) -> Rule:
    """The rule for a changed path: its own row, else the most conservative row below it
    (a whole dataset added), else the default (retrain)."""
    own = explicit_rules(path)
    if own:
        return own[0]
    below = [rule for parts, rule in _compiled() if matches(parts, path, subtree=True)]
    if below:
        worst = min(below, key=lambda rule: CLASSES.index(rule.klass))
        topics = sorted({rule.topic for rule in below if rule.klass == worst.klass})
        return Rule(worst.pattern, worst.klass, ", ".join(topics))
    return Rule("", DEFAULT_CLASS, "not in the classification table")


def most_conservative(classes: list[str]) -> str | None:
    """The first of CLASSES among ``classes`` (None for none)."""
    return min(classes, key=CLASSES.index) if classes else None
