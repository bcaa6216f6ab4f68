"""Step kinds: kind name -> function(StepContext) -> outputs, and per-kind input digests."""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from loopc.runtime.runner import InputDigest, StepContext, StepFailed, StepFunction
from loopc.runtime.step import StepDoc, StepError

# kind -> "module:function"; modules are imported on first use so a worker loads only what it runs.
STEP_KINDS: dict[str, str] = {
    "validate": "loopc.runtime.steps_data:run_validate",
    "split": "loopc.runtime.steps_data:run_split",
    "features": "loopc.runtime.steps_data:run_features",
    "train": "loopc.runtime.steps_model:run_train",
    "select": "loopc.runtime.steps_model:run_select",
    "evaluate": "loopc.runtime.steps_model:run_evaluate",
    "gate": "loopc.runtime.steps_deploy:run_gate",
    "register": "loopc.runtime.steps_deploy:run_register",
    "shadow": "loopc.runtime.steps_deploy:run_shadow",
    "promote": "loopc.runtime.steps_deploy:run_promote",
    "monitor": "loopc.runtime.steps_monitor:run_monitor",
    "echo": "loopc.runtime.steps:run_echo",
}


def step_function(kind: str) -> StepFunction:
    """The function that runs steps of ``kind``; StepError lists the known kinds."""
    if kind not in STEP_KINDS:
        known = ", ".join(sorted(STEP_KINDS))
        raise StepError(f"unknown step kind '{kind}' (known: {known}); recompile with this loopc version")
    module, name = STEP_KINDS[kind].split(":")
    return getattr(importlib.import_module(module), name)


def _validate_digest(doc: StepDoc, root: Path) -> str:
    """Content fingerprint of a validate step's source files (the data version)."""
    from loopc.runtime.steps_data import source_fingerprint

    return source_fingerprint(doc, root)


INPUT_DIGESTS: dict[str, InputDigest] = {"validate": _validate_digest}


def run_echo(ctx: StepContext) -> dict[str, Any]:
    """A diagnostic kind for testing executors and targets without data.

    config: ``outputs`` (returned as is), ``sleep_s`` (wait first), ``fail`` (fail with this
    message), ``stop`` (ask dependents to skip with this reason), ``write`` (text saved as
    ``echo.txt`` in the artifact).
    """
    config = ctx.config
    if config.get("sleep_s"):
        time.sleep(float(config["sleep_s"]))
    if config.get("fail"):
        raise StepFailed(f"step '{ctx.doc.id}' failed as configured: {config['fail']}")
    (ctx.out_dir / "echo.txt").write_text(str(config.get("write", "")), encoding="utf-8")
    outputs = dict(config.get("outputs") or {})
    outputs["upstream"] = sorted(ctx.upstream)
    if config.get("stop"):
        outputs["stop"] = config["stop"]
    ctx.log.info("echo %s", outputs)
    return outputs
