"""Cross-reference checks (LPC2xx): every name resolves, columns exist with fitting types, metrics fit the task."""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any, Iterator

from pydantic import ValidationError

from loopc.compiler.frontend.load import SpecPath
from loopc.compiler.spec.models import Column, Dataset, Model, Spec
from loopc.runtime.data.booleans import bool_text
from loopc.runtime.data.predictions import joined_outputs, probabilities_refused, replaced_keys
from loopc.runtime.evaluate.metrics import BINARY, MULTICLASS, REGRESSION, task_metrics

NUMERIC = {"int", "float", "bool"}
CATEGORICAL = {"category", "string", "int", "bool"}
CATEGORICAL_TRANSFORMS = {"onehot", "hash"}
TASK_METRICS = {task: tuple(task_metrics(task)) for task in (BINARY, MULTICLASS, REGRESSION)}
SWEEP_ONLY_METRICS = ("val_loss",)


@dataclass(frozen=True)
class Issue:
    """A problem found at ``path`` of the composed tree (located later)."""

    path: SpecPath
    code: str
    message: str
    hint: str | None = None


def check_references(spec: Spec) -> list[Issue]:
    """Every cross-reference problem of a structurally valid spec."""
    issues: list[Issue] = []
    for name, dataset in spec.datasets.items():
        issues += _dataset_issues(name, dataset)
    dataset = spec.datasets.get(spec.model.dataset)
    if dataset is None:
        issues.append(_unknown(("model", "dataset"), "LPC201", "dataset", spec.model.dataset, spec.datasets))
        return issues + list(_feature_names(spec))
    issues += list(_feature_names(spec))
    issues += list(_feature_columns(spec, dataset))
    issues += list(_label(spec.model, dataset))
    issues += list(_metrics(spec))
    issues += list(_gate_columns(spec, dataset))
    issues += list(_monitor_columns(spec, dataset))
    issues += list(_scoring_outputs(spec))
    issues += list(_sweep(spec.model))
    return issues


def _unknown(path: SpecPath, code: str, what: str, name: str, known: Any, extra: str = "") -> Issue:
    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1)
    hint = f"did you mean '{close[0]}'?" if close else (f"known: {', '.join(sorted(map(str, known)))}" if known else None)
    return Issue(path, code, f"unknown {what} '{name}'{extra}", hint)


def expression_columns(expr: str) -> set[str]:
    """Columns an expression reads (raises ValueError for a broken expression)."""
    from loopc.runtime.data.expressions import columns_in

    return columns_in(expr)


def _expr_issues(path: SpecPath, expr: str, columns: dict[str, Column], dataset_name: str,
                 numeric: bool) -> Iterator[Issue]:
    try:
        used = expression_columns(expr)
    except ValueError as exc:
        yield Issue(path, "LPC212", str(exc).splitlines()[0], "use arithmetic, comparisons and column names")
        return
    for column in sorted(used):
        if column not in columns:
            yield _unknown(path, "LPC203", "column", column, columns, f" in dataset '{dataset_name}'")
        elif numeric and columns[column].type not in NUMERIC:
            yield Issue(path, "LPC204", f"expression reads '{column}' of type {columns[column].type}; "
                        "expressions need int, float or bool columns", "one-hot or hash it in its own feature")


def _dataset_issues(name: str, dataset: Dataset) -> list[Issue]:
    issues, columns, base = [], dataset.columns, ("datasets", name)
    split = dataset.split
    for field, value in (("key", split.key), ("column", split.column)):
        if value is not None and value not in columns:
            issues.append(_unknown((*base, "split", field), "LPC210", "split column", value, columns))
    for index, check in enumerate(dataset.checks):
        path = (*base, "checks", index)
        if check.kind in ("null_rate", "freshness") and check.column not in columns:
            issues.append(_unknown((*path, "column"), "LPC211", "column", check.column, columns))
        if check.kind == "freshness" and check.column in columns and columns[check.column].type not in (
                "timestamp", "date"):
            issues.append(Issue((*path, "column"), "LPC211", f"freshness needs a timestamp or date column, "
                                f"'{check.column}' is {columns[check.column].type}"))
        if check.kind == "expression":
            issues += _expr_issues((*path, "expr"), check.expr, columns, name, numeric=False)
    return issues


def _feature_names(spec: Spec) -> Iterator[Issue]:
    for index, name in enumerate(spec.model.features):
        if name not in spec.features:
            yield _unknown(("model", "features", index), "LPC202", "feature", name, spec.features)


def _feature_columns(spec: Spec, dataset: Dataset) -> Iterator[Issue]:
    columns, label = dataset.columns, spec.model.label
    for name in spec.model.features:
        feature = spec.features.get(name)
        if feature is None:
            continue
        path = ("features", name)
        if feature.expr is not None:
            yield from _expr_issues((*path, "expr"), feature.expr, columns, spec.model.dataset, numeric=True)
            read = _safe_columns(feature.expr)
        else:
            read = {feature.column}
            yield from _column_type(path, feature, columns, spec.model.dataset)
        if label in read:
            yield Issue(path, "LPC217", f"feature '{name}' reads the label column '{label}' (target leakage)",
                        "remove the label from the model's features")


def _safe_columns(expr: str) -> set[str]:
    try:
        return expression_columns(expr)
    except ValueError:
        return set()


def _column_type(path: SpecPath, feature: Any, columns: dict[str, Column], dataset_name: str) -> Iterator[Issue]:
    if feature.column not in columns:
        yield _unknown((*path, "column"), "LPC203", "column", feature.column, columns,
                       f" in dataset '{dataset_name}'")
        return
    column_type = columns[feature.column].type
    first = feature.transforms[0].kind if feature.transforms else None
    if first in CATEGORICAL_TRANSFORMS and column_type not in CATEGORICAL:
        yield Issue((*path, "column"), "LPC204", f"{first} needs a category, string, int or bool column; "
                    f"'{feature.column}' is {column_type}", "use a numeric transform such as standardize or bucketize")
    elif first not in CATEGORICAL_TRANSFORMS and column_type not in NUMERIC:
        what = f"transform '{first}'" if first else "a feature without transforms"
        yield Issue((*path, "column"), "LPC204", f"{what} needs an int, float or bool column; "
                    f"'{feature.column}' is {column_type}", "encode it with 'transform: onehot' or 'hash'")


def _label(model: Model, dataset: Dataset) -> Iterator[Issue]:
    column = dataset.columns.get(model.label)
    if column is None:
        yield _unknown(("model", "label"), "LPC205", "label column", model.label, dataset.columns,
                       f" in dataset '{model.dataset}'")
        return
    problem = _label_problem(model.task, column)
    if problem:
        yield Issue(("model", "label"), "LPC206", f"label '{model.label}' ({column.type}) does not fit "
                    f"{model.task}: {problem}", None)


def _label_problem(task: str, column: Column) -> str | None:
    if task == "regression":
        return None if column.type in ("int", "float") else "regression needs an int or float label"
    if task == "multiclass_classification":
        return None if column.type in ("category", "string", "int") else "needs a category, string or int label"
    if column.type == "bool":
        return None
    if column.type == "category" and column.allowed is not None and len(column.allowed) <= 2 \
            and all(bool_text(str(value)) is not None for value in column.allowed):
        return None
    if column.type == "int" and column.min == 0 and column.max == 1:
        return None
    return ("needs a bool label, a category with at most 2 'allowed' values that read as true or false "
            "(true/false, yes/no, t/f, 1/0), or an int with min 0 and max 1")


def _metrics(spec: Spec) -> Iterator[Issue]:
    task = spec.model.task
    known = TASK_METRICS[task]
    used: list[tuple[SpecPath, str]] = []
    used += [(("gate", "thresholds", i, "metric"), t.metric) for i, t in enumerate(spec.gate.thresholds)]
    used += [(("gate", "champion", i, "metric"), c.metric) for i, c in enumerate(spec.gate.champion)]
    used += [(("gate", "slices", i, "metric"), s.metric) for i, s in enumerate(spec.gate.slices)]
    used += [(("deploy", "shadow", "max_metric_drop", m), m) for m in spec.deploy.shadow.max_metric_drop]
    for name, monitor in spec.monitors.items():
        used += [(("monitors", name, "performance", i, "metric"), t.metric) for i, t in enumerate(monitor.performance)]
        if monitor.labels is not None:
            used += [(("monitors", name, "labels", "max_drop", m), m) for m in monitor.labels.max_drop]
    for path, metric in used:
        if metric not in known:
            yield _unknown(path, "LPC207", "metric", metric, known, f" for {task}")
    if spec.model.sweep is not None and spec.model.sweep.metric not in known + SWEEP_ONLY_METRICS:
        yield _unknown(("model", "sweep", "metric"), "LPC207", "metric", spec.model.sweep.metric,
                       known + SWEEP_ONLY_METRICS, f" for {task}")


def _gate_columns(spec: Spec, dataset: Dataset) -> Iterator[Issue]:
    columns = dataset.columns
    for index, item in enumerate(spec.gate.slices):
        if item.column not in columns:
            yield _unknown(("gate", "slices", index, "column"), "LPC208", "slice column", item.column, columns)
    for index, item in enumerate(spec.gate.fairness):
        if spec.model.task != "binary_classification":
            yield Issue(("gate", "fairness", index), "LPC209", "fairness thresholds apply only to "
                        f"binary_classification, not {spec.model.task}", "remove gate.fairness or change the task")
        if item.column not in columns:
            yield _unknown(("gate", "fairness", index, "column"), "LPC208", "fairness column", item.column, columns)


def _monitor_columns(spec: Spec, dataset: Dataset) -> Iterator[Issue]:
    columns = dataset.columns
    for name, monitor in spec.monitors.items():
        base = ("monitors", name)
        if monitor.time_column is not None and monitor.time_column not in columns:
            yield _unknown((*base, "time_column"), "LPC213", "time column", monitor.time_column, columns)
        if monitor.window is not None and monitor.time_column is None:
            yield Issue((*base, "window"), "LPC213", "a window needs 'time_column' to know each row's time", None)
        drift = monitor.data_drift
        for index, column in enumerate(drift.columns or [] if drift else []):
            if column not in columns:
                yield _unknown((*base, "data_drift", "columns", index), "LPC213", "drift column", column, columns)
        if monitor.labels is not None and monitor.labels.predictions is None:
            yield Issue((*base, "labels"), "LPC213", "labels need 'predictions': the folder the scoring plan writes",
                        "add a scoring section (predictions then defaults to scoring.output) or set "
                        "labels.predictions")
        elif monitor.labels is not None and spec.scoring is not None \
                and monitor.labels.predictions == spec.scoring.output:
            yield from _labels_read_scoring(base, monitor.labels, spec.scoring, spec.model.task)


def _scoring_outputs(spec: Spec) -> Iterator[Issue]:
    """Scoring refuses probabilities of a model that is not multiclass and keys named as an output column or a
    partition (runtime/score/batch.check_outputs); the spec says so before any run."""
    scoring = spec.scoring
    if scoring is None:
        return
    if probabilities_refused(spec.model.task == MULTICLASS, scoring.write):
        yield Issue(("scoring", "write", scoring.write.index("probabilities")), "LPC218",
                    f"only a multiclass model writes probabilities; this {spec.model.task} model writes its score",
                    "remove probabilities from scoring.write")
    clashes, taken = replaced_keys(scoring.write, scoring.keys)
    for index, key in enumerate(scoring.keys):
        if key in clashes:
            yield Issue(("scoring", "keys", index), "LPC218", f"key '{key}' has the name of an output or "
                        f"partition column ({', '.join(taken)}), which would replace it",
                        "rename the column in the scored rows, or write fewer outputs")


def _labels_read_scoring(base: SpecPath, labels: Any, scoring: Any, task: str) -> Iterator[Issue]:
    """Labels joined with this spec's own scoring output need the columns the scoring plan writes for it."""
    missing_keys = [k for k in labels.keys if k not in scoring.keys]
    if missing_keys:
        yield Issue((*base, "labels", "keys"), "LPC213", f"labels join on {', '.join(missing_keys)}, which "
                    "scoring does not copy into its predictions", f"add {', '.join(missing_keys)} to scoring.keys")
    needed = joined_outputs(task == MULTICLASS, labels.window is not None)
    lacking = [w for w in needed if w not in scoring.write]
    if lacking:
        yield Issue((*base, "labels"), "LPC213", f"labels are judged from the stored predictions' "
                    f"{', '.join(needed)}, but scoring.write lacks {', '.join(lacking)}",
                    f"add {', '.join(lacking)} to scoring.write")


def _sweep(model: Model) -> Iterator[Issue]:
    if model.sweep is None:
        return
    base = model.model_dump(mode="python", exclude={"sweep"})
    for parameter, values in model.sweep.parameters.items():
        path = ("model", "sweep", "parameters", parameter)
        keys = parameter.split(".")
        if not _settable(base, keys):
            yield _unknown(path, "LPC214", "sweep parameter", parameter, _dotted_fields(base))
            continue
        for index, value in enumerate(values):
            problem = _sweep_value_problem(base, keys, value)
            if problem:
                yield Issue((*path, index), "LPC215", f"sweep value {value!r} for '{parameter}' is invalid: {problem}")


def _settable(tree: dict[str, Any], keys: list[str]) -> bool:
    node: Any = tree
    for key in keys[:-1]:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return isinstance(node, dict) and (keys[-1] in node or keys[-2:-1] == ["params"])


def _sweep_value_problem(base: dict[str, Any], keys: list[str], value: Any) -> str | None:
    trial = copy.deepcopy(base)
    node = trial
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    try:
        Model.model_validate(trial)
    except ValidationError as exc:
        first = exc.errors()[0]
        return first["msg"][:1].lower() + first["msg"][1:]
    return None


def _dotted_fields(tree: dict[str, Any], prefix: str = "") -> list[str]:
    names = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        names += _dotted_fields(value, f"{name}.") if isinstance(value, dict) and value else [name]
    return names
