"""Compile benchmark: plan and emit a repository of N pipelines for every target (ROADMAP: 1,000 in <= 30 s).

Builds the same repository as benchmarks/validate.py (churn and demand copies with unique names),
loads it once with ``load_project``, then times, separately: planning (``plan_project``), rendering
with each backend, and writing the files (``loopc compile``'s atomic writer with its manifest).
``compile_all_targets_over_validate`` is load + plan + render and write for every target, over the load (a full
validate) measured in the same run; rendering counts the step documents and plan.json once (``documents_s``, which
every target shares) and each target's own files (``render_s``). Writing is timed twice: into a new folder (``write_s``, split into user and
system time: creating files is kernel time) and again over that output with nothing changed (``rewrite_s``: a
recompile, which compares and leaves every file alone); ``recompile_all_targets_over_validate`` uses the latter.
Run: ``python benchmarks/compile.py [--pipelines N] [--repeat R]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from validate import build_repository  # noqa: E402  (the sibling benchmark's repository builder)

from loopc.compiler.api import load_project  # noqa: E402
from loopc.compiler.cli.compile import write_files  # noqa: E402
from loopc.compiler.plan.project import plan_project  # noqa: E402
from loopc.compiler.spec.collector import collector_paused  # noqa: E402
from loopc.compiler.targets import EmitOptions, backends  # noqa: E402
from loopc.compiler.targets.common import plan_files  # noqa: E402


def best_of(repeat: int, work) -> tuple[float, object]:
    """The fastest of ``repeat`` runs of ``work()`` in CPU seconds of this process, and its last result.

    CPU time, not wall time: the benchmark machines are shared, and every stage here is single-threaded.
    """
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.process_time()
        result = work()
        best = min(best, time.process_time() - start)
    return best, result


def user_system(work) -> tuple[float, float]:
    """User and system CPU seconds of this process while ``work()`` runs (once)."""
    before = os.times()
    work()
    after = os.times()
    return after.user - before.user, after.system - before.system


def render_documents(plans) -> float:
    """CPU seconds to render every step document and plan.json of ``plans`` once (what the targets share).

    Each target's ``render_s`` is then timed on plans that hold these texts (``Plan.texts``), so they count once.
    """
    with collector_paused():  # as inside every backend's render
        start = time.process_time()
        for plan in plans:
            plan_files(plan)
        return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        build_repository(root, args.pipelines)
        load_s, loaded = best_of(args.repeat, lambda: load_project(root))
        plan_s, plans = best_of(args.repeat, lambda: plan_project(loaded))
        documents_s = min(render_documents(plan_project(loaded)) for _ in range(args.repeat))
        render_documents(plans)  # every target's render_s below takes them from Plan.texts, as in a repeat
        result = {"clock": "process CPU seconds", "pipelines": args.pipelines, "plans": len(plans), "steps": sum(len(p.steps) for p in plans),
                  "load_s": round(load_s, 3), "plan_s": round(plan_s, 3), "documents_s": round(documents_s, 3),
                  "targets": {}}
        for name, backend in sorted(backends().items()):
            render_s, files = best_of(args.repeat, lambda: backend.render(plans, EmitOptions()))
            out = Path(tmp) / "out" / name
            write_user, write_system = user_system(lambda: write_files(out, files, name))
            rewrite_s, _ = best_of(args.repeat, lambda: write_files(out, files, name))
            result["targets"][name] = {"files": len(files), "render_s": round(render_s, 3),
                                       "write_s": round(write_user + write_system, 3),
                                       "write_user_system_s": [round(write_user, 3), round(write_system, 3)],
                                       "rewrite_s": round(rewrite_s, 3)}
        emit_s = documents_s + sum(t["render_s"] + t["write_s"] for t in result["targets"].values())
        reemit_s = documents_s + sum(t["render_s"] + t["rewrite_s"] for t in result["targets"].values())
        result["compile_all_targets_cpu_s"] = round(load_s + plan_s + emit_s, 3)
        result["compile_all_targets_over_validate"] = round((load_s + plan_s + emit_s) / load_s, 2)
        result["recompile_all_targets_over_validate"] = round((load_s + plan_s + reemit_s) / load_s, 2)
        result["machine"] = f"{platform.machine()} {platform.processor() or ''} python {platform.python_version()}"
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
