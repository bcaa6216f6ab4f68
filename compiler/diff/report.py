"""``loopc plan`` reports: text for a terminal, JSON for tools, Markdown to post on a pull request.

Every value from a spec is shown as JSON (control and bidi characters escaped); Markdown escapes
HTML and table pipes in everything a spec or the command line wrote.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from loopc.compiler.diff.compare import MISSING, display_value
from loopc.compiler.diff.pipelines import PipelineDiff, SpecChange
from loopc.compiler.errors import SpecError

REPORT_FORMAT = 1
_VALUE_LIMIT = 60
_MARKDOWN_PUNCTUATION = frozenset("\\`*_[]~|")
_STATUSES = ("changed", "added", "removed", "unchanged")


@dataclass(frozen=True)
class SideError:
    side: str  # "base" or "head"
    error: SpecError


@dataclass(frozen=True)
class PlanReport:
    base: str  # how the user named the base (a revision or a folder)
    head: str  # the path compared
    pipelines: tuple[PipelineDiff, ...] = ()
    errors: tuple[SideError, ...] = ()

    @property
    def changed(self) -> bool:
        return any(p.status != "unchanged" for p in self.pipelines)

    def counts(self) -> dict[str, int]:
        return {status: sum(p.status == status for p in self.pipelines) for status in _STATUSES}

    def summary(self) -> str:
        return ", ".join(f"{n} {status}" for status, n in self.counts().items())


# --------------------------------------------------------------------------- JSON


def to_json(report: PlanReport) -> str:
    data = {
        "format": REPORT_FORMAT, "base": report.base, "head": report.head, "changed": report.changed,
        "summary": report.counts(), "pipelines": [_pipeline_json(p) for p in report.pipelines],
        "errors": [_error_json(e) for e in report.errors],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _pipeline_json(diff: PipelineDiff) -> dict[str, Any]:
    return {
        "name": diff.name, "status": diff.status, "class": diff.klass, "file": diff.file,
        "targets": list(diff.targets), "changes": [_change_json(c) for c in diff.changes],
        "steps": [{"plan": s.plan, "step": s.step, "change": s.change, "why": s.why} for s in diff.steps],
    }


def _change_json(item: SpecChange) -> dict[str, Any]:
    change = item.change
    out: dict[str, Any] = {"path": change.display, "op": change.op, "class": item.klass, "topic": item.topic}
    out.update({key: value for key, value in (("old", change.old), ("new", change.new)) if value is not MISSING})
    return out


def _error_json(item: SideError) -> dict[str, Any]:
    e = item.error
    return {"side": item.side, "file": e.file, "line": e.line, "column": e.column, "code": e.code,
            "path": e.spec_path, "message": e.message, "hint": e.hint}


# --------------------------------------------------------------------------- text


def to_text(report: PlanReport) -> str:
    lines = [f"loopc plan: {report.head} against {report.base}"]
    if report.errors:
        lines += [f"{_side(report, e)}: {e.error.render()}" for e in report.errors]
        lines.append(_plural(len(report.errors), "spec error"))
        return "\n".join(lines) + "\n"
    for diff in report.pipelines:
        if diff.status == "unchanged":
            continue
        lines.append(f"{diff.name} ({diff.file}): {diff.status}" + (f", {diff.klass}" if diff.klass else ""))
        lines += _aligned([[c.klass, c.topic, f"{c.change.display}: {_values(c)}"] for c in diff.changes], "  ")
        if diff.steps and diff.status == "changed":
            lines.append(f"  steps that would run on {', '.join(diff.targets)}:")
            lines += _aligned([[s.plan, s.step, s.why] for s in diff.steps], "    ")
    lines.append(f"{_plural(len(report.pipelines), 'pipeline')}: {report.summary()}")
    return "\n".join(lines) + "\n"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _side(report: PlanReport, item: SideError) -> str:
    return f"base ({report.base})" if item.side == "base" else f"head ({report.head})"


def _values(item: SpecChange) -> str:
    change = item.change
    return f"{display_value(change.old, _VALUE_LIMIT)} -> {display_value(change.new, _VALUE_LIMIT)}"


def _aligned(rows: list[list[str]], indent: str) -> list[str]:
    """Rows of cells, every column but the last padded to its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [indent + "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]) for row in rows]


# --------------------------------------------------------------------------- Markdown


def to_markdown(report: PlanReport) -> str:
    where = f"{_code(report.head)} against {_code(report.base)}"
    if report.errors:
        lines = ["### loopc plan: spec errors", "", f"Specs {where}.", ""]
        lines += [f"- **{e.side}**: {_code(e.error.render())}" for e in report.errors]
        return "\n".join(lines) + "\n"
    title = report.summary() if report.changed else f"no changes ({_plural(len(report.pipelines), 'pipeline')} unchanged)"
    lines = [f"### loopc plan: {title}", "", f"Specs {where}."]
    for diff in report.pipelines:
        if diff.status != "unchanged":
            lines += ["", *_pipeline_markdown(diff)]
    return "\n".join(lines) + "\n"


def _pipeline_markdown(diff: PipelineDiff) -> list[str]:
    verdict = diff.klass if diff.status == "changed" else diff.status
    lines = [f"#### {_code(diff.name)}: {verdict}", "",
             f"{_code(diff.file)}, targets: {_cell(', '.join(diff.targets))}"]
    if diff.changes:
        lines += ["", "| class | spec path | base | head |", "| --- | --- | --- | --- |"]
        lines += [f"| {c.klass} ({_cell(c.topic)}) | {_code(c.change.display)} | "
                  f"{_code(display_value(c.change.old, _VALUE_LIMIT))} | "
                  f"{_code(display_value(c.change.new, _VALUE_LIMIT))} |" for c in diff.changes]
    if diff.steps and diff.status == "changed":
        lines += ["", f"<details><summary>{_step_count(diff)}</summary>", "",
                  "| plan | step | why |", "| --- | --- | --- |"]
        lines += [f"| {_code(s.plan)} | {_code(s.step)} | {_cell(s.why)} |" for s in diff.steps]
        lines += ["", "</details>"]
    return lines


def _step_count(diff: PipelineDiff) -> str:
    removed = sum(step.change == "removed" for step in diff.steps)
    text = _plural(len(diff.steps) - removed, "step") + " would run"
    return text + (f", {removed} removed" if removed else "")


def _cell(text: str) -> str:
    """Text shown as written in a Markdown table cell: HTML escaped, Markdown punctuation and pipes escaped."""
    text = html.escape(text.replace("\n", " "), quote=False)
    return "".join("\\" + ch if ch in _MARKDOWN_PUNCTUATION else ch for ch in text)


def _code(text: str) -> str:
    return f"<code>{_cell(text)}</code>"
