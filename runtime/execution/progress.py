"""Live progress of a plan run and its closing summary table (rich; plain lines off a terminal)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

STATUS_STYLE = {"done": "green", "cached": "cyan", "skipped": "yellow", "failed": "bold red", "running": "magenta"}
KEY_OUTPUTS = ("rows", "features", "version", "passed", "decision", "action", "promoted", "metric", "best_trial",
               "auc", "rmse", "accuracy", "agreement", "drifted", "epochs")


def key_outputs(record: dict[str, Any], limit: int = 4) -> str:
    """A short ``name=value`` digest of a step's most telling outputs (or its message)."""
    outputs = record.get("outputs") or {}
    parts = []
    metrics = outputs.get("metrics") if isinstance(outputs.get("metrics"), dict) else {}
    outputs = {**{k: v for k, v in metrics.items() if k in KEY_OUTPUTS}, **outputs}
    for name in KEY_OUTPUTS:
        if name in outputs and not isinstance(outputs[name], (dict, list)):
            value = outputs[name]
            parts.append(f"{name}={value:.4g}" if isinstance(value, float) else f"{name}={value}")
    text = ", ".join(parts[:limit])
    message = str(record.get("message") or outputs.get("stop") or outputs.get("summary") or "")
    message = message if len(message) <= 160 else message[:157] + "..."
    return f"{text}; {message}" if text and message else text or str(message)


class PlainProgress:
    """One line per step event: for logs, CI and pipes."""

    def __init__(self, console: Console):
        self.console = console
        self.started: dict[str, float] = {}

    def begin(self, plan: dict[str, Any], run_id: str) -> None:
        self.console.print(f"plan {plan.get('plan', '?')}: {len(plan['steps'])} steps, run {run_id}",
                           markup=False, highlight=False)

    def start(self, step_id: str) -> None:
        self.started[step_id] = time.time()
        self.console.print(f"  start   {step_id}", markup=False, highlight=False)

    def finish(self, step_id: str, record: dict[str, Any]) -> None:
        line = f"  {record.get('status', '?'):<7} {step_id} ({record.get('seconds', 0):.1f}s)"
        detail = key_outputs(record)
        self.console.print(f"{line} {detail}".rstrip(), markup=False, highlight=False, soft_wrap=True)

    def end(self) -> None:
        pass


class RichProgress(PlainProgress):
    """A live table of steps with their status, refreshed in place on a terminal."""

    def __init__(self, console: Console):
        super().__init__(console)
        self.rows: dict[str, tuple[str, str]] = {}
        self.live: Live | None = None
        self.title = ""

    def _table(self) -> Table:
        table = Table(title=self.title, title_justify="left", show_header=False, box=None)
        for step_id, (status, detail) in self.rows.items():
            seconds = f"{time.time() - self.started[step_id]:.0f}s" if status == "running" else ""
            table.add_row(f"[{STATUS_STYLE.get(status, '')}]{status}[/]", step_id, seconds, detail)
        return table

    def begin(self, plan: dict[str, Any], run_id: str) -> None:
        self.rows = {step["id"]: ("waiting", "") for step in plan["steps"]}
        self.title = f"plan {plan.get('plan', '?')} · run {run_id}"
        self.live = Live(self._table(), console=self.console, refresh_per_second=4, transient=True)
        self.live.start()

    def start(self, step_id: str) -> None:
        self.started[step_id] = time.time()
        self.rows[step_id] = ("running", "")
        self._refresh()

    def finish(self, step_id: str, record: dict[str, Any]) -> None:
        self.rows[step_id] = (record.get("status", "?"), key_outputs(record, limit=2))
        self._refresh()

    def _refresh(self) -> None:
        if self.live:
            self.live.update(self._table())

    def end(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None


def make_progress(console: Console | None = None) -> PlainProgress:
    """Live progress on a terminal, plain lines otherwise."""
    console = console or Console(stderr=True)
    return RichProgress(console) if console.is_terminal else PlainProgress(console)


def summary_table(result: Any) -> Table:
    """The closing table: step, status, seconds, key outputs (a triggered plan follows its monitor)."""
    table = Table(title=f"run {result.run_id} · plan {result.plan.get('plan', '?')} · {result.seconds:.1f}s")
    for name, justify in (("step", "left"), ("status", "left"), ("seconds", "right"), ("key outputs", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for step_id, record in result.records.items():
        status = record.get("status", "?")
        table.add_row(step_id, f"[{STATUS_STYLE.get(status, '')}]{status}[/]",
                      f"{record.get('seconds', 0):.1f}", key_outputs(record))
    return table


def print_summary(result: Any, console: Console | None = None) -> None:
    """Print the summary of a plan run and of the plan it triggered, with the report paths."""
    console = console or Console()
    while result is not None:
        console.print(summary_table(result))
        for step_id, record in result.records.items():
            if record.get("status") == "failed":
                console.print(f"[bold red]{step_id} failed:[/]")
                console.print(record.get("message", ""), markup=False, highlight=False, soft_wrap=True)
        for note in result.notes:
            console.print(f"[bold]{note}[/]")
        if result.report:
            console.print(f"report: {result.report}", highlight=False)
        result = result.triggered
