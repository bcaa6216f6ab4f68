"""The local target: plan.json, one step document per step and run.sh per plan (docs/internals.md)."""

from __future__ import annotations

from dataclasses import dataclass

from loopc.compiler.errors import LoopcError
from loopc.compiler.plan.pipeline import Plan
from loopc.compiler.spec.collector import collector_paused
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.common import name_problems, plan_files
from loopc.compiler.targets.jinja import loopc_version, render


class LocalTargetError(LoopcError):
    """A plan cannot be written as local files (a name a shell comment or folder cannot carry)."""


def run_script(plan: Plan, options: EmitOptions) -> str:
    """run.sh: exec the local executor on the plan.json beside it."""
    return render(
        "local", "run.sh.j2", version=loopc_version(), pipeline=plan.pipeline, plan=plan.name,
        steps=len(plan.steps), python=options.python, root=options.root,
    )


@dataclass(frozen=True)
class LocalBackend:
    """Runs here with ``python -m loopc.runtime run-plan``; needs nothing but loopc installed."""

    name: str = "local"

    def check(self, plans: list[Plan], options: EmitOptions) -> list[str]:
        """Names run.sh cannot carry; otherwise the local executor runs every plan (multi-node steps here)."""
        return [problem for plan in plans for problem in name_problems(plan)]

    @collector_paused()
    def render(self, plans: list[Plan], options: EmitOptions) -> dict[str, str]:
        """``<plan>/plan.json``, ``<plan>/steps/<id>.json`` and ``<plan>/run.sh`` for every plan."""
        problems = self.check(plans, options)
        if problems:
            raise LocalTargetError("cannot write local plans:\n  " + "\n  ".join(problems))
        files: dict[str, str] = {}
        for plan in sorted(plans, key=lambda p: p.name):
            files.update(plan_files(plan))
            files[f"{plan.name}/run.sh"] = run_script(plan, options)
        return dict(sorted(files.items()))


BACKEND = LocalBackend()
