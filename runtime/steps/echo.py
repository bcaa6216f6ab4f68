"""The ``echo`` step kind: a diagnostic step for testing executors and targets without data."""

from __future__ import annotations

import time
from typing import Any

from loopc.runtime.execution.runner import StepContext, StepFailed


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
