"""Step kinds by name: kind -> function(StepContext) -> outputs, and per-kind input snapshots.

Functions are named as "module:function" and imported on first use, so the execution machinery
never imports the step modules (which import it) and a worker loads only what it runs.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from loopc.runtime.execution.runner import InputSnapshot, StepFunction
from loopc.runtime.execution.step import StepDoc, StepError

# kind -> "module:function"; modules are imported on first use so a worker loads only what it runs.
STEP_KINDS: dict[str, str] = {
    "validate": "loopc.runtime.steps.validate:run_validate",
    "split": "loopc.runtime.steps.split:run_split",
    "features": "loopc.runtime.steps.features:run_features",
    "train": "loopc.runtime.steps.model:run_train",
    "select": "loopc.runtime.steps.model:run_select",
    "evaluate": "loopc.runtime.steps.model:run_evaluate",
    "gate": "loopc.runtime.steps.deploy:run_gate",
    "register": "loopc.runtime.steps.deploy:run_register",
    "shadow": "loopc.runtime.steps.deploy:run_shadow",
    "promote": "loopc.runtime.steps.deploy:run_promote",
    "monitor": "loopc.runtime.steps.monitor:run_monitor",
    "score": "loopc.runtime.steps.score:run_score",
    "echo": "loopc.runtime.steps.echo:run_echo",
}


def _resolve(reference: str):
    """The function ``module:function`` names; when its module uses Arrow, Arrow's memory pool is chosen before
    the step allocates (a step that reads no data, such as a split validate assigned, never imports Arrow)."""
    module, name = reference.split(":")
    function = getattr(importlib.import_module(module), name)
    if "pyarrow" in sys.modules:
        from loopc.runtime.data.memory_pool import choose_memory_pool

        choose_memory_pool()
    return function


def step_function(kind: str) -> StepFunction:
    """The function that runs steps of ``kind``; StepError lists the known kinds."""
    if kind not in STEP_KINDS:
        known = ", ".join(sorted(STEP_KINDS))
        raise StepError(f"unknown step kind '{kind}' (known: {known}); recompile with this loopc version")
    return _resolve(STEP_KINDS[kind])


def _validate_snapshot(doc: StepDoc, root: Path):
    """The snapshot of a validate step's source files: its ``digest`` (the data version) enters the
    cache key, and the step reads exactly those files."""
    return _resolve("loopc.runtime.steps.validate:source_snapshot")(doc, root)


INPUT_SNAPSHOTS: dict[str, InputSnapshot] = {"validate": _validate_snapshot}

