"""Model cards: a deterministic Markdown page per registered version (use, risk, data, metrics, gate, lineage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopc.runtime.registry.interface import ModelVersion

CARDS = "cards"

RISK_NOTES = {
    "minimal": "minimal risk: no obligations beyond good practice",
    "limited": "limited risk: transparency obligations apply (EU AI Act, art. 50)",
    "high": "high risk: risk management, data governance, logging, human oversight and accuracy "
    "obligations apply (EU AI Act, chapter III)",
}


def card_path(state: str | Path, model: str, version: int) -> Path:
    """Where the register step keeps the model card of ``model`` v``version``: ``state/cards/MODEL-vN.md``."""
    return Path(state) / CARDS / f"{model}-v{version}.md"


def _cell(value: Any) -> str:
    """A table cell: numbers to 4 significant digits, None as an em dash, pipes escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]


def _header(version: ModelVersion, pipeline: dict) -> list[str]:
    risk = pipeline.get("risk_class", "minimal")
    return [
        f"# Model card: {version.model} v{version.version}",
        "",
        f"- Pipeline: {pipeline.get('name', '—')}",
        f"- Owner: {pipeline.get('owner') or 'not stated'}",
        f"- Risk class: {RISK_NOTES.get(risk, risk)}",
        f"- Registered: {version.created_at}",
        f"- Status: {version.status}",
        f"- Artifact: `{version.artifact}`",
        "",
        "## Intended use",
        "",
        pipeline.get("intended_use") or "Not stated: set pipeline.intended_use in the spec.",
    ] + (["", pipeline["description"]] if pipeline.get("description") else [])


def _model_section(model: dict, trained: dict | None = None) -> list[str]:
    arch = model.get("architecture", {})
    shape = f"{arch.get('kind', 'linear')}" + (f" {arch['hidden']}" if arch.get("hidden") else "")
    training, optimizer = model.get("training", {}), model.get("optimizer", {})
    rows = [
        ["task", model.get("task")],
        ["label", model.get("label")],
        ["features", ", ".join(model.get("features", []))],
        ["architecture", shape],
        ["optimizer", f"{optimizer.get('name', '—')} (lr {_cell(optimizer.get('lr'))})"],
        _epochs_row(training, trained),
        ["precision", model.get("precision", "float32")],
    ]
    return ["", "## Model", "", *_table(["field", "value"], rows)]


def _epochs_row(training: dict, trained: dict | None) -> list[str]:
    """Epochs trained (best) against epochs configured, when the training history is known."""
    configured, batch = training.get("epochs", "—"), training.get("batch_size", "—")
    if not trained:
        return ["epochs configured / batch size", f"{configured} / {batch}"]
    return ["epochs trained (best) / configured / batch size",
            f"{trained['epochs']} ({trained.get('best_epoch', '—')}) / {configured} / {batch}"]


def _data_section(version: ModelVersion, data: dict) -> list[str]:
    fingerprints = version.dataset_fingerprints
    names = sorted(set(data) | set(fingerprints))
    rows = []
    for name in names:
        info = data.get(name, {})
        splits = ", ".join(f"{k} {v}" for k, v in sorted(info.get("splits", {}).items())) or None
        rows.append([name, info.get("fingerprint") or fingerprints.get(name), info.get("rows"), splits])
    return ["", "## Data", "", *_table(["dataset", "fingerprint", "rows", "splits"], rows)]


def _metrics_section(metrics: dict, slices: dict | None) -> list[str]:
    flat = metrics.get("metrics", metrics) if isinstance(metrics.get("metrics"), dict) else metrics
    rows = [[name, value] for name, value in sorted(flat.items()) if not isinstance(value, dict)]
    lines = ["", "## Metrics", "", *(_table(["metric", "value"], rows) if rows else ["No metrics recorded."])]
    for column in sorted(slices or {}):
        groups = slices[column]
        names = sorted({k for g in groups.values() for k, v in g.items() if k not in ("rows", "too_small")})
        table = [[group, groups[group].get("rows"), *(groups[group].get(n) for n in names)] for group in sorted(groups)]
        lines += ["", f"### Slices by {column}", "", *_table([column, "rows", *names], table)]
    return lines


def _fairness_section(fairness: dict | None) -> list[str]:
    if not fairness:
        return ["", "## Fairness", "", "No fairness metrics were computed (add gate.fairness to the spec)."]
    rows = [[column, metric, gap] for column in sorted(fairness) for metric, gap in sorted(fairness[column].items())]
    return ["", "## Fairness", "", *_table(["sensitive column", "metric", "gap"], rows)]


def _gate_section(gate: dict | None) -> list[str]:
    if not gate:
        return ["", "## Gate decision", "", "No gate decision recorded."]
    lines = ["", "## Gate decision", "", f"Status: **{gate.get('status', '—')}**. {gate.get('summary', '')}"]
    if gate.get("override"):
        lines += ["", f"Overridden by {gate['override'].get('actor')}: {gate['override'].get('reason')}"]
    checks = [
        [c.get("rule"), c.get("scope") or None, c.get("metric") or None, c.get("value"), c.get("bound"),
         "skipped" if c.get("skipped") else ("pass" if c.get("passed") else "FAIL")]
        for c in gate.get("checks", [])
    ]  # fmt: skip
    return lines + (["", *_table(["rule", "scope", "metric", "value", "bound", "result"], checks)] if checks else [])


def _lineage_section(version: ModelVersion) -> list[str]:
    rows = [["spec hash", version.spec_hash], ["code version", version.code_version], ["seed", version.seed]]
    rows += [[f"step {step}", fp] for step, fp in sorted(version.step_fingerprints.items())]
    return ["", "## Lineage", "", *_table(["what", "value"], rows)]


def render_model_card(
    version: ModelVersion,
    *,
    pipeline: dict[str, Any],
    model: dict[str, Any],
    gate: dict[str, Any] | None,
    fairness: dict[str, Any] | None,
    data: dict[str, Any],
    slices: dict[str, Any] | None = None,
    trained: dict[str, Any] | None = None,
) -> str:
    """Markdown model card; the same inputs always give the same bytes.

    ``pipeline`` and ``model`` are the spec's Pipeline and Model dicts; ``gate`` a
    GateDecision dict; ``fairness`` {column: {metric: gap}}; ``data`` {dataset: {"fingerprint",
    "rows", "splits": {split: rows}}}; ``slices`` {column: {value: {"rows", metric...}}}; ``trained``
    {"epochs", "best_epoch"} from the training history (the card shows epochs trained, not only configured).
    Metrics come from ``version.metrics`` (flat, or an evaluation result with "metrics").
    """
    lines = _header(version, pipeline) + _model_section(model, trained) + _data_section(version, data)
    lines += _metrics_section(version.metrics, slices) + _fairness_section(fairness)
    lines += _gate_section(gate) + _lineage_section(version)
    return "\n".join(lines) + "\n"
