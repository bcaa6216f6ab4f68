"""The score step kind: the version behind ``scoring.alias`` now scores ``scoring.source`` through its
export bundle; predictions are published under ``scoring.output`` as one batch per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopc.runtime.data.errors import DataError
from loopc.runtime.data.sources import resolve_files
from loopc.runtime.execution.runner import StepContext, StepFailed
from loopc.runtime.export.bundle import ExportError
from loopc.runtime.export.bundle_score import BundleError, load
from loopc.runtime.registry.interface import RegistryError
from loopc.runtime.score.batch import ScoreJob, batch_name, score_to_parquet
from loopc.runtime.score.resolve import ModelRef, ScoreError, resolve, version_bundle
from loopc.runtime.steps.common import loopc_version


def _source_path(root: Path, path: str) -> str:
    """A source path relative to the project root (a URI or absolute path as given)."""
    return path if "://" in path or Path(path).is_absolute() else str(root / path)


def run_score(ctx: StepContext) -> dict[str, Any]:
    """Resolve the alias at run time, score every source row, publish ``output/version=N/batch=<run id>/``."""
    scoring, model_name = ctx.config["scoring"], ctx.config["model_name"]
    ref = ModelRef(model_name, scoring["alias"], None)
    try:
        files = resolve_files(scoring["source"], ctx.root, exclude=[ctx.state])
    except DataError as exc:
        raise StepFailed(f"scoring source: {exc}") from None
    job = ScoreJob(source=scoring["source"]["path"], output=Path(_source_path(ctx.root, scoring["output"])),
                   keys=tuple(scoring["keys"]), write=tuple(scoring["write"]), batch_id=batch_name(ctx.run_id),
                   files=tuple(files.path(n) for n in files.names), filesystem=files.filesystem,
                   format=scoring["source"].get("format"), options=dict(scoring["source"].get("options") or {}))
    try:
        version = resolve(ctx.registry, ref)
        model = load(version_bundle(ctx.state, version, loopc_version=loopc_version()))
        summary = score_to_parquet(model, job, version.version)
    except (ScoreError, ExportError, BundleError, RegistryError) as exc:
        raise StepFailed(f"scoring with {ref}: {exc}") from None
    ctx.log.info("scored %d rows with %s v%d -> %s", summary["rows"], model_name, version.version, summary["output"])
    return {"model": model_name, **summary}
