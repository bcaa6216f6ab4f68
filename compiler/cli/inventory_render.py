"""``loopc inventory`` rows as text (one block per model) and Markdown (a summary table, then one section each)."""

from __future__ import annotations

from typing import Any


def champion_text(registry: dict[str, Any] | None) -> str:
    """``champion v2 of 3, promoted 2026-11-26T05:00:00Z by ci``, ``no registry``, ``2 versions, no champion``."""
    if registry is None:
        return "no registry"
    if registry["champion"] is None:
        return f"{registry['versions']} version{'s' if registry['versions'] != 1 else ''}, no champion"
    text = f"champion v{registry['champion']} of {registry['versions']}"
    if registry["promoted_at"]:
        text += f", promoted {registry['promoted_at']} by {registry['promoted_by']}"
    return text


def breaches_text(registry: dict[str, Any] | None) -> str:
    if registry is None or registry["champion"] is None:
        return "-"
    breaches = registry["open_breaches"]
    if not breaches:
        return "none open"
    return "; ".join(f"{b['at']} {b['monitor']}: {b['summary']}" for b in breaches)


def _metrics(registry: dict[str, Any] | None) -> str:
    metrics = (registry or {}).get("metrics") or {}
    return ", ".join(f"{name} {value:.4g}" for name, value in metrics.items()) or "-"


def _datasets(row: dict[str, Any]) -> str:
    return ", ".join(f"{d['name']} ({d['source']}, {d['format']}{', training' if d['training'] else ''})"
                     for d in row["datasets"])


def _features(row: dict[str, Any]) -> str:
    return ", ".join(f"{f['name']} ({f['column'] or f['expr']}{''.join(' > ' + t for t in f['transforms'])})"
                     for f in row["features"])


def _schedules(row: dict[str, Any]) -> str:
    parts = [f"training {row['schedule'] or 'manual'}"]
    parts += [f"monitor {m['name']} {m['schedule'] or 'manual'} ({m['on_breach']} on breach)" for m in row["monitors"]]
    return "; ".join(parts)


def _gates(row: dict[str, Any]) -> str:
    gates = row["gates"]
    rules = gates["thresholds"] + [f"vs champion {c}" for c in gates["champion"]]
    rules += [f"slice {s}" for s in gates["slices"]] + [f"fairness {f}" for f in gates["fairness"]]
    return (f"on {gates['split']}: {', '.join(rules) or 'none'}; no champion: {gates['no_champion']}; "
            f"approval {gates['approval']}; shadow {'on' if gates['shadow'] else 'off'}")


def fields(row: dict[str, Any]) -> list[tuple[str, str]]:
    """The labelled lines of one model, in the order both formats show them."""
    registry = row["registry"]
    return [
        ("pipeline", f"{row['pipeline']} ({row['file']})"), ("owner", row["owner"] or "-"),
        ("risk class", row["risk_class"]), ("intended use", row["intended_use"] or "-"),
        ("task", f"{row['task']}, label {row['label']}"), ("datasets", _datasets(row)),
        ("features", _features(row)), ("targets", ", ".join(row["targets"])), ("schedules", _schedules(row)),
        ("gates", _gates(row)), ("registry", registry["url"] if registry else "none"),
        ("champion", champion_text(registry)), ("metrics", _metrics(registry)),
        ("open breaches", breaches_text(registry)),
    ]


def to_text(rows: list[dict[str, Any]]) -> str:
    """One block per model: its name, then ``  label  value`` lines."""
    blocks = [f"{len(rows)} model{'s' if len(rows) != 1 else ''}"]
    for row in rows:
        lines = [row["model"]] + [f"  {label:<15}{value}" for label, value in fields(row)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def escape(text: str) -> str:
    """A table cell: backslashes and pipes escaped, newlines as spaces."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


_SUMMARY = ("model", "pipeline", "owner", "risk class", "champion", "open breaches")


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A summary table of every model, then a section per model with a two-column table of its fields."""
    lines = ["# Model inventory", "", "| " + " | ".join(_SUMMARY) + " |", "|" + "---|" * len(_SUMMARY)]
    for row in rows:
        cells = [row["model"], row["pipeline"], row["owner"] or "-", row["risk_class"],
                 champion_text(row["registry"]), breaches_text(row["registry"])]
        lines.append("| " + " | ".join(escape(c) for c in cells) + " |")
    for row in rows:
        lines += ["", f"## {escape(row['model'])}", "", "| field | value |", "|---|---|"]
        lines += [f"| {label} | {escape(value)} |" for label, value in fields(row)]
    return "\n".join(lines) + "\n"
