"""``make demo``: the whole loop on the churn example in ./demo-project, from data to drift-triggered retraining."""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel

from loopc.compiler.errors import LoopcError

CONSOLE = Console()


def _say(step: int, text: str) -> None:
    CONSOLE.rule(f"[bold]{step}. {text}", align="left")


def create_project(target: Path) -> None:
    """A fresh copy of the churn example with its first data batch (what `loopc init` does)."""
    from loopc.compiler.cli import init

    if target.exists():
        shutil.rmtree(target)
    with contextlib.redirect_stdout(io.StringIO()) as said:
        parser = argparse.ArgumentParser(prog="loopc init")
        init.add_arguments(parser)  # the arguments `loopc init DIR --example churn` gets, defaults included
        init.run(parser.parse_args([str(target), "--example", "churn"]))
    CONSOLE.print("\n".join(line for line in said.getvalue().splitlines() if not line.startswith("next:")),
                  highlight=False)


def add_drifted_batch(target: Path) -> None:
    """A later batch with shifted distributions: into data/incoming/ and the training data."""
    command = [sys.executable, str(target / "generate.py"), "--root", str(target), "--batch", "1", "--drifted",
               "--append"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise LoopcError(f"the drifted batch could not be generated: {result.stderr.strip()[-300:]}")
    CONSOLE.print(result.stdout.strip(), highlight=False)


def _run(plan: Path, root: Path):
    from loopc.runtime.execution.executor import run_plan
    from loopc.runtime.execution.progress import print_summary

    result = run_plan(plan, root)
    print_summary(result, CONSOLE)
    return result


def _champion(state: Path, model: str) -> Any:
    from loopc.runtime.registry.connect import open_registry
    from loopc.runtime.registry.interface import CHAMPION

    with open_registry(f"sqlite:///{state / 'registry.db'}") as registry:
        return registry.get_alias(model, CHAMPION)


def _describe(version: Any) -> str:
    if version is None:
        return "no champion"
    metrics = ", ".join(f"{k} {version.metrics[k]:.4f}" for k in ("auc", "log_loss", "accuracy")
                        if isinstance(version.metrics.get(k), (int, float)))
    return f"version {version.version} ({metrics})"


def _outcome(result: Any) -> str:
    """What happened to the retrained challenger: promoted or rejected, and why."""
    records = result.records
    gate = next((r for r in records.values() if r.get("kind") == "gate"), {}).get("outputs", {})
    promote = next((r for r in records.values() if r.get("kind") == "promote"), {})
    failed = [f"{sid}: {r.get('message', '')}" for sid, r in records.items() if r.get("status") == "failed"]
    if failed:
        return "[red]failed[/]: " + "; ".join(failed)
    checks = (gate.get("decision") or {}).get("checks", [])
    versus = "; ".join(c["detail"] for c in checks if c.get("rule") == "champion")
    gate_text = f"gate {gate.get('summary', 'not reached')}" + (f" ({versus})" if versus else "")
    if not gate.get("passed", False):
        return f"[yellow]rejected by the gate[/]: {gate_text}"
    outputs = promote.get("outputs", {})
    if outputs.get("promoted"):
        return f"[green]promoted[/]: {outputs['summary']}; {gate_text}"
    return f"[yellow]not promoted[/]: {gate_text}; but {outputs.get('summary') or promote.get('message', '')}"


def main(argv: list[str] | None = None) -> int:
    """Run the demo; exit 0 when every plan ran (a rejected challenger is a valid outcome)."""
    from loopc.compiler.cli.run import compile_local

    parser = argparse.ArgumentParser(prog="python -m loopc.compiler.cli.demo", description=__doc__)
    parser.add_argument("--dir", default="demo-project", help="project folder (recreated; default ./demo-project)")
    target = Path(parser.parse_args(argv).dir).resolve()
    started = time.time()
    CONSOLE.print(Panel("loopc demo: data → validation → features → JAX training → gate → registry → shadow → "
                        "promotion → drift monitoring → retraining", expand=False))
    _say(1, f"create {target} from the churn example and generate batch 0")
    create_project(target)
    pipeline = compile_local(target / "pipeline.yaml")[0]
    _say(2, "run the training loop")
    first = _run(pipeline.train_plan, pipeline.root)
    CONSOLE.print(f"champion: [bold]{_describe(_champion(pipeline.state, 'churn_classifier'))}[/]")
    _say(3, "a drifted batch arrives (generate.py --batch 1 --drifted --append)")
    add_drifted_batch(target)
    _say(4, "run the monitor: drift → retrain → gate the challenger against the champion")
    monitor = _run(pipeline.monitor_plan, pipeline.root)
    verdict = next(iter(monitor.records.values()), {}).get("outputs", {})
    CONSOLE.print(f"monitor: {verdict.get('summary', 'no verdict')}", highlight=False)
    if monitor.triggered is not None:
        CONSOLE.print(f"retraining outcome: {_outcome(monitor.triggered)}")
    else:
        CONSOLE.print("[yellow]no retraining was triggered[/]")
    CONSOLE.print(f"champion now: [bold]{_describe(_champion(pipeline.state, 'churn_classifier'))}[/]")
    reports = [r.report for r in (first, monitor, monitor.triggered) if r is not None and r.report]
    CONSOLE.print("HTML reports:\n" + "\n".join(f"  {path}" for path in reports), highlight=False)
    CONSOLE.print(f"registry: loopc registry list --root {target}", highlight=False)
    CONSOLE.print(f"demo finished in {time.time() - started:.0f} s")
    ok = first.ok and monitor.ok
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except LoopcError as exc:
        CONSOLE.print(f"[red]error:[/] {exc}")
        sys.exit(1)
