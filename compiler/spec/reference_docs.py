"""Render the field tables of docs/spec-reference.md from the models (a test keeps the doc in sync)."""

from __future__ import annotations

import inspect
import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from loopc.compiler.spec.codes import ERROR_CODES, WARNING_CODES
from loopc.compiler.spec.models import Spec

BEGIN, END = "<!-- BEGIN GENERATED: loopc reference -->", "<!-- END GENERATED: loopc reference -->"

NOTES: dict[str, str] = {
    "Spec.pipeline": "who owns the loop, when it runs, where it compiles to",
    "Spec.datasets": "the tables the loop reads, by name",
    "Spec.features": "model inputs computed from dataset columns, by name",
    "Spec.model": "what is trained, on which dataset and features",
    "Spec.gate": "what a candidate must show before it replaces the champion",
    "Spec.deploy": "shadow period, approval and the registry alias promotion moves",
    "Spec.monitors": "drift and performance watches on live rows, by name",
    "Pipeline.owner": "accountable team or person (required for risk class limited and high)",
    "Pipeline.description": "free text shown in DAGs, reports and model cards",
    "Pipeline.risk_class": "EU AI Act tier; sets the governance policy (see Policy)",
    "Pipeline.intended_use": "what the model is for and not for (required for limited and high)",
    "Pipeline.targets": "targets `loopc compile` emits for",
    "Pipeline.tags": "labels for DAGs and the inventory (at most 100 characters each, as Airflow requires)",
    "Pipeline.resources": "default scheduler requests of every step",
    "Resources.cpus": "CPU cores per step; unset here and in the pipeline: 1",
    "Resources.gpus": "GPUs per step (Slurm `--gres=gpu:N`); unset here and in the pipeline: 0",
    "Resources.memory": "memory per step, e.g. `4G`; unset here and in the pipeline: 2G",
    "Resources.time": "wall-clock limit per step, e.g. `2h`; unset here and in the pipeline: 1h",
    "Resources.nodes": "nodes for multi-node training; unset here and in the pipeline: 1",
    "Resources.partition": "Slurm partition (or a comma list)",
    "Resources.account": "Slurm account",
    "Resources.qos": "Slurm quality of service",
    "Resources.retries": "retries after a failure; unset here and in the pipeline: 0",
    "Resources.retry_delay": "wait between retries; unset here and in the pipeline: 1m",
    "Resources.pool": "Airflow pool",
    "Resources.queue": "Airflow queue",
    "Resources.priority": "Airflow priority weight / Slurm nice",
    "Dataset.description": "free text",
    "Dataset.source": "where rows come from",
    "Dataset.columns": "schema: every column the loop reads, by name",
    "Dataset.checks": "data checks run before anything else",
    "Dataset.split": "how rows divide into train/valid/test",
    "Source.path": "file, glob or pyarrow filesystem URI, relative to the spec file",
    "Source.partitioning": "directory partitioning scheme",
    "Source.options": "extra reader options",
    "Column.type": "logical type of the column",
    "Column.nullable": "whether nulls are allowed",
    "Column.unique": "whether values must be unique",
    "Column.min": "smallest allowed value (int and float)",
    "Column.max": "largest allowed value (int and float)",
    "Column.allowed": "the only values allowed",
    "Column.description": "free text",
    "RowCountCheck.min": "fewest rows", "RowCountCheck.max": "most rows",
    "NullRateCheck.column": "column checked", "NullRateCheck.max": "largest fraction of nulls",
    "FreshnessCheck.column": "timestamp or date column", "FreshnessCheck.max_age": "newest row at most this old",
    "ExpressionCheck.min_fraction": "fraction of rows the expression must hold for",
    "Split.method": "hash of a key, time order, or random with a seed",
    "Split.seed": "seed of the random split", "Split.train": "train fraction",
    "Split.valid": "validation fraction", "Split.test": "test fraction",
    "Feature.column": "the column it reads (or give `expr`)",
    "Feature.description": "free text",
    "Log.offset": "added before the logarithm", "Clip.min": "lower bound", "Clip.max": "upper bound",
    "Bucketize.boundaries": "fixed bucket edges", "Bucketize.quantiles": "number of fitted quantile buckets",
    "OneHot.max_categories": "most frequent categories kept", "OneHot.min_frequency": "rarer categories dropped",
    "Hash.buckets": "hash buckets", "Impute.strategy": "what replaces nulls",
    "Impute.value": "replacement for strategy `constant`",
    "Model.task": "what is predicted",
    "Model.label": "the column predicted (its type must fit the task)",
    "Model.features": "names from `features`, in input order",
    "Model.architecture": "linear (logistic/softmax for classification) or MLP",
    "Model.optimizer": "optax optimizer", "Model.schedule": "learning-rate schedule",
    "Model.training": "epochs, batch size, seed, early stopping",
    "Model.precision": "compute dtype of training",
    "Model.resources": "scheduler requests of the training steps",
    "Model.sweep": "hyperparameter grid; the best trial is kept",
    "Model.description": "free text",
    "MLP.hidden": "widths of the hidden layers", "MLP.activation": "activation function",
    "MLP.dropout": "dropout rate",
    "Optimizer.name": "optax optimizer name", "Optimizer.lr": "learning rate",
    "Optimizer.clip_norm": "global gradient-norm clipping",
    "LRSchedule.kind": "schedule shape", "LRSchedule.warmup_steps": "linear warm-up steps",
    "LRSchedule.decay_rate": "decay of the exponential schedule",
    "Training.epochs": "passes over the training split", "Training.batch_size": "rows per step",
    "Training.seed": "seed of initialisation and shuffling", "Training.early_stopping": "stop when val_loss stalls",
    "Training.class_weight": "reweight classes by inverse frequency",
    "EarlyStopping.metric": "watched metric", "EarlyStopping.patience": "epochs without improvement",
    "EarlyStopping.min_delta": "val_loss must fall by more than this to count as an improvement",
    "Sweep.metric": "metric that picks the best trial (a task metric or val_loss)",
    "Sweep.direction": "whether lower or higher is better", "Sweep.concurrency": "trials run at once",
    "Gate.split": "split the candidate is evaluated on", "Gate.thresholds": "absolute bounds on metrics",
    "Gate.champion": "comparisons with the current champion", "Gate.slices": "bounds per slice of a column",
    "Gate.fairness": "bounds on fairness gaps across a sensitive column",
    "Gate.no_champion": "what happens when there is no champion yet",
    "Gate.override": "whether a person may override a failed gate (audited)",
    "Threshold.metric": "metric name (must fit the task)", "Threshold.min": "lowest allowed value",
    "Threshold.max": "highest allowed value",
    "ChampionComparison.metric": "metric compared",
    "ChampionComparison.min_delta": "improvement required (negative tolerates a regression)",
    "ChampionComparison.relative": "min_delta is a fraction of the champion's value",
    "SliceThreshold.column": "column whose values form slices", "SliceThreshold.metric": "metric per slice",
    "SliceThreshold.min": "lowest allowed value per slice", "SliceThreshold.max": "highest allowed value per slice",
    "SliceThreshold.min_rows": "slices with fewer rows are skipped",
    "FairnessThreshold.column": "sensitive column", "FairnessThreshold.metric": "fairness gap measured",
    "FairnessThreshold.max": "largest allowed gap",
    "Override.allowed": "whether a failed gate may be overridden",
    "Override.require_reason": "an override must give a reason",
    "Deploy.shadow": "shadow period before promotion", "Deploy.approval": "`manual`: a person approves promotion",
    "Shadow.enabled": "run the shadow step", "Shadow.min_rows": "rows both models must score",
    "Shadow.min_agreement": "fraction of rows where they must agree",
    "Shadow.max_metric_drop": "metric -> largest allowed drop versus the champion",
    "Monitor.source": "live rows to watch", "Monitor.schedule": "cron or preset (written into scrontab; no @once); null: with the pipeline",
    "Monitor.time_column": "timestamp column for `window`", "Monitor.min_rows": "fewer rows: no verdict",
    "Monitor.data_drift": "input drift per column (null: off)",
    "Monitor.prediction_drift": "drift of the model's predictions (null: off)",
    "Monitor.max_null_rate": "data-quality bound on nulls per column",
    "Monitor.action": "what a breach does",
    "DataDrift.methods": "statistics computed per column", "DataDrift.psi_max": "PSI above this drifts",
    "DataDrift.js_max": "Jensen-Shannon distance above this drifts",
    "DataDrift.p_value": "KS / chi-square p-value below this drifts",
    "PredictionDrift.method": "statistic on predictions", "PredictionDrift.max": "threshold of that statistic",
    "Action.on_breach": "alert only, or retrain", "Action.cooldown": "least time between two retrains",
}


def iter_models(root: type[BaseModel] = Spec) -> list[type[BaseModel]]:
    """Every model reachable from ``root``, in first-seen order."""
    seen: list[type[BaseModel]] = []

    def walk(tp: Any) -> None:
        if inspect.isclass(tp) and issubclass(tp, BaseModel):
            if tp not in seen:
                seen.append(tp)
                for field in tp.model_fields.values():
                    walk(field.annotation)
            return
        for arg in typing.get_args(tp):
            walk(arg)

    walk(root)
    return seen


def type_name(tp: Any) -> str:
    """A short readable type: ``list of Threshold``, ``'auto' | 'manual'``, ``int | null``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(type_name(a) for a in args)
    if origin is list:
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}"
    if tp is type(None):
        return "null"
    if tp is typing.Any:
        return "any"
    if inspect.isclass(tp) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return getattr(tp, "__name__", str(tp))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    value = field.default if field.default is not PydanticUndefined else field.default_factory()
    if isinstance(value, BaseModel):
        return "see type"
    return f"`{json.dumps(value)}`"


def _meaning(model: type[BaseModel], name: str, field: Any) -> str:
    text = NOTES.get(f"{model.__name__}.{name}") or field.description
    if text is None and name == "kind":
        text = "selects this variant"
    return (text or "").replace("|", "\\|")


def render_fields() -> str:
    """Markdown: one table per model with field, type, default and meaning."""
    parts = []
    for model in iter_models():
        doc = (inspect.getdoc(model) or "").split("\n\n")[0].replace("\n", " ")
        rows = [f"| `{name}` | {type_name(field.annotation)} | {_default(field)} | {_meaning(model, name, field)} |"
                for name, field in model.model_fields.items()]
        parts.append("\n".join([f"### {model.__name__}", "", doc, "", "| field | type | default | meaning |",
                                "|---|---|---|---|", *rows]))
    return "\n\n".join(parts)


def render_codes(codes: dict[str, str] = ERROR_CODES) -> str:
    """Markdown table of every error (or warning) code."""
    rows = [f"| {code} | {text} |" for code, text in codes.items()]
    return "\n".join(["| code | meaning |", "|---|---|", *rows])


def render_generated() -> str:
    """The generated block of docs/spec-reference.md, markers included."""
    return "\n\n".join([BEGIN, "## Field reference", render_fields(), "## Error codes", render_codes(), "## Warning codes",
                        render_codes(WARNING_CODES), END])


def update_document(text: str) -> str:
    """``text`` with its generated block replaced by a fresh one (appended when missing)."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + render_generated() + rest.split(END, 1)[1]
    return text.rstrip("\n") + "\n\n" + render_generated() + "\n"


if __name__ == "__main__":  # python -m loopc.compiler.spec.reference_docs docs/spec-reference.md
    import sys
    from pathlib import Path

    target = Path(sys.argv[1])
    target.write_text(update_document(target.read_text(encoding="utf-8")), encoding="utf-8", newline="\n")
