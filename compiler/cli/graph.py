"""``loopc graph``: print a plan's DAG as Mermaid (default) or Graphviz DOT."""

from __future__ import annotations

import argparse
import json

from loopc.compiler.errors import LoopcError
from loopc.compiler.plan.pipeline import Plan, plan_edges

FORMATS = ("mermaid", "dot")
_MERMAID_SHAPES = {"gate": ('{"', '"}'), "promote": ('(["', '"])'), "monitor": ('[("', '")]')}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="pipeline file or directory of specs")
    parser.add_argument("overrides", nargs="*", help="Hydra-style overrides: key=value, group=option, a=1,2")
    parser.add_argument("--format", "-f", choices=FORMATS, default="mermaid", help="output format")
    parser.add_argument("--plan", choices=("train", "monitor"), default="train", help="which plan to draw")
    parser.add_argument("--all-edges", action="store_true",
                        help="draw every dependency, also those implied by a longer path")


def run(args: argparse.Namespace) -> int:
    from loopc.compiler.api import load_project
    from loopc.compiler.plan.project import plan_project

    plans = plan_project(load_project(args.spec, args.overrides))
    chosen = [plan for plan in plans if plan.kind == args.plan]
    if not chosen:
        names = ", ".join(sorted({plan.pipeline for plan in plans}))
        raise LoopcError(f"{names}: no {args.plan} plan (a monitor plan needs at least one entry under 'monitors')")
    render = to_mermaid if args.format == "mermaid" else to_dot
    print("\n".join(render(plan, reduced=not args.all_edges) for plan in chosen), end="")
    return 0


def _mermaid_label(text: str) -> str:
    return text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")


def to_mermaid(plan: Plan, reduced: bool = True) -> str:
    """A Mermaid flowchart: one subgraph per stage, gates as diamonds, promotion as a stadium."""
    ids = {step.id: f"s{index}" for index, step in enumerate(plan.steps)}
    lines = ["flowchart LR", f"  %% {_mermaid_label(plan.name)} ({plan.kind} plan)"]
    for stage in dict.fromkeys(step.stage for step in plan.steps):
        lines.append(f"  subgraph {stage}")
        for step in (s for s in plan.steps if s.stage == stage):
            left, right = _MERMAID_SHAPES.get(step.kind, ('["', '"]'))
            lines.append(f"    {ids[step.id]}{left}{_mermaid_label(step.id)}{right}")
        lines.append("  end")
    lines.extend(f"  {ids[dep]} --> {ids[step]}" for dep, step in plan_edges(plan, reduced))
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def to_dot(plan: Plan, reduced: bool = True) -> str:
    """A Graphviz digraph: one cluster per stage, uncached steps dashed."""
    lines = [f"digraph {_dot_string(plan.name)} {{", "  rankdir=LR;", '  node [shape=box, fontname="Helvetica"];']
    for index, stage in enumerate(dict.fromkeys(step.stage for step in plan.steps)):
        lines.append(f"  subgraph cluster_{index} {{")
        lines.append(f"    label={_dot_string(stage)};")
        for step in (s for s in plan.steps if s.stage == stage):
            style = "" if step.cacheable else ", style=dashed"
            lines.append(f"    {_dot_string(step.id)} [label={_dot_string(step.id)}{style}];")
        lines.append("  }")
    lines.extend(f"  {_dot_string(dep)} -> {_dot_string(step)};" for dep, step in plan_edges(plan, reduced))
    lines.append("}")
    return "\n".join(lines) + "\n"
