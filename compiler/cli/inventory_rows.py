"""The model inventory as plain data: one row per pipeline's model, from its spec and (if any) its registry.

The row is the JSON format of ``loopc inventory`` (``FORMAT`` bumps when a key changes meaning or goes
away; new keys may be added). Text and Markdown are rendered from the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopc.compiler.errors import LoopcError

FORMAT = 1
CHAMPION = "champion"
BREACH = "monitor_breach"


def spec_row(spec: Any, file: str) -> dict[str, Any]:
    """What the spec says about its model: who, what for, which data, features, targets, schedules, gates."""
    pipeline, model = spec.pipeline, spec.model
    return {
        "pipeline": pipeline.name, "file": file, "model": model.name, "task": model.task, "label": model.label,
        "owner": pipeline.owner, "risk_class": pipeline.risk_class, "intended_use": pipeline.intended_use,
        "description": pipeline.description, "tags": list(pipeline.tags), "targets": list(pipeline.targets),
        "datasets": [_dataset(name, spec.datasets[name], name == model.dataset) for name in sorted(spec.datasets)],
        "features": [_feature(name, spec.features[name]) for name in model.features],
        "schedule": pipeline.schedule,
        "monitors": [{"name": name, "schedule": m.schedule, "source": m.source.path, "on_breach": m.action.on_breach}
                     for name, m in sorted(spec.monitors.items())],
        "gates": _gates(spec.gate, spec.deploy),
    }


def _dataset(name: str, dataset: Any, training: bool) -> dict[str, Any]:
    source = dataset.source
    return {"name": name, "source": source.path, "format": source.format or _format_of(source.path),
            "training": training, "columns": len(dataset.columns)}


def _format_of(path: str) -> str:
    return "csv" if path.lower().endswith(".csv") else "parquet"


def _feature(name: str, feature: Any) -> dict[str, Any]:
    return {"name": name, "column": feature.column, "expr": feature.expr,
            "transforms": [t.kind for t in feature.transforms]}


def _bound(metric: str, low: float | None, high: float | None) -> list[str]:
    return ([f"{metric} >= {low:g}"] if low is not None else []) + ([f"{metric} <= {high:g}"] if high is not None else [])


def _gates(gate: Any, deploy: Any) -> dict[str, Any]:
    """The gate's rules as short readable strings, plus how promotion is approved."""
    return {
        "split": gate.split,
        "thresholds": [b for t in gate.thresholds for b in _bound(t.metric, t.min, t.max)],
        "champion": [f"{c.metric} min_delta {c.min_delta:g}{' (relative)' if c.relative else ''}" for c in gate.champion],
        "slices": [f"{s.column}: {b}" for s in gate.slices for b in _bound(s.metric, s.min, s.max)],
        "fairness": [f"{f.column}: {f.metric} <= {f.max:g}" for f in gate.fairness],
        "no_champion": gate.no_champion, "approval": deploy.approval, "shadow": deploy.shadow.enabled,
    }


def registry_url(spec: Any, root: Path, override: str | None) -> str:
    """``override`` (--registry or $LOOPC_REGISTRY), else the spec's ``pipeline.registry``, else ``registry.db``
    in its state folder; a relative SQLite path resolves against the spec's folder."""
    url = override or spec.pipeline.registry or str(Path(spec.pipeline.state_dir) / "registry.db")
    if "://" in url and not url.startswith("sqlite:///"):
        return url
    path = Path(url[len("sqlite:///"):] if url.startswith("sqlite:///") else url)
    return f"sqlite:///{path if path.is_absolute() else root / path}"


class RegistryReader:
    """Opens each registry once (read-only) and answers champion questions; a missing registry is ``None``."""

    def __init__(self) -> None:
        self._open: dict[str, Any] = {}

    def status(self, url: str, model: str) -> dict[str, Any] | None:
        """The model's champion in the registry at ``url``: version, promotion, metrics, open breaches."""
        from loopc.runtime.registry.interface import RegistryError

        try:
            registry = self._registry(url)
            if registry is None:
                return None
            return _champion_status(url, registry, model)
        except RegistryError as exc:
            raise LoopcError(f"cannot read the registry: {exc}") from None

    def _registry(self, url: str) -> Any:
        from loopc.runtime.registry.connect import open_registry
        from loopc.runtime.registry.interface import RegistryMissing

        if url not in self._open:
            try:
                self._open[url] = open_registry(url, read_only=True)
            except RegistryMissing:
                self._open[url] = None
        return self._open[url]

    def close(self) -> None:
        for registry in self._open.values():
            if registry is not None:
                registry.close()
        self._open.clear()


def _champion_status(url: str, registry: Any, model: str) -> dict[str, Any]:
    known = model in registry.models()
    champion = registry.get_alias(model, CHAMPION) if known else None
    log = registry.audit_log(model) if known else []
    versions = len(registry.versions(model)) if known else 0
    status: dict[str, Any] = {"url": url, "versions": versions, "champion": None, "promoted_at": None,
                              "promoted_by": None, "metrics": {}, "open_breaches": []}
    if champion is None:
        return status
    promotion = _last_promotion(log, champion.version)
    since = promotion.id if promotion else 0
    status.update(champion=champion.version, metrics=_scalar_metrics(champion.metrics),
                  promoted_at=promotion.at if promotion else None, promoted_by=promotion.actor if promotion else None,
                  open_breaches=[_breach(e) for e in log
                                 if e.action == BREACH and e.version == champion.version and e.id > since])
    return status


def _last_promotion(log: list[Any], version: int) -> Any:
    moves = [e for e in log if e.alias == CHAMPION and e.version == version]
    return moves[-1] if moves else None


def _scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in sorted(metrics.items()) if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _breach(entry: Any) -> dict[str, Any]:
    return {"at": entry.at, "monitor": entry.details.get("monitor"), "summary": entry.reason,
            "action": entry.details.get("action")}
