"""The ``echo`` step kind: a diagnostic step for testing executors and targets without data."""

from __future__ import annotations

import time
from typing import Any

from loopc.runtime.execution.runner import StepContext, StepFailed


def run_echo(ctx: StepContext) -> dict[str, Any]:
    """A diagnostic kind for testing executors and targets without data.

    config: ``outputs`` (returned as is), ``sleep_s`` (wait first), ``fail`` (fail with this
    message), ``stop`` (ask dependents to skip with this reason), ``write`` (text saved as
    ``echo.txt`` in the artifact). Barriers for tests of concurrent runs, paths relative to the
    project root: ``touch`` (create this file on start), ``wait_for`` (then wait until this file
    exists), ``require`` (fail unless this file exists: a failure whose cause lies outside the plan).
    """
    config = ctx.config
    if config.get("touch"):
        (ctx.root / config["touch"]).touch()
    while config.get("wait_for") and not (ctx.root / config["wait_for"]).exists():
        time.sleep(0.01)
    if config.get("sleep_s"):
        time.sleep(float(config["sleep_s"]))
    if config.get("fail"):
        raise StepFailed(f"step '{ctx.doc.id}' failed as configured: {config['fail']}")
    if config.get("require") and not (ctx.root / config["require"]).exists():
        raise StepFailed(f"step '{ctx.doc.id}' needs {config['require']}, which does not exist")
    (ctx.out_dir / "echo.txt").write_text(str(config.get("write", "")), encoding="utf-8")
    outputs = dict(config.get("outputs") or {})
    outputs["upstream"] = sorted(ctx.upstream)
    if config.get("stop"):
        outputs["stop"] = config["stop"]
    ctx.log.info("echo %s", outputs)
    return outputs
