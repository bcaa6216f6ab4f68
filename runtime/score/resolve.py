"""``MODEL``, ``MODEL@ALIAS`` or ``MODEL@VERSION`` -> a registered version and its export bundle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from loopc.runtime.export.bundle import write_bundle
from loopc.runtime.registry.interface import CHAMPION, ModelVersion, Registry, RegistryError
from loopc.runtime.registry.modelcard import card_path
from loopc.runtime.store.artifacts import local_artifact

BUNDLES = "bundles"


class ScoreError(Exception):
    """Scoring cannot run: an unknown model or alias, unreadable input, an unwritable output."""


@dataclass(frozen=True)
class ModelRef:
    model: str
    alias: str | None
    version: int | None

    def __str__(self) -> str:
        return f"{self.model}@{self.version if self.version is not None else self.alias}"


def parse_ref(text: str) -> ModelRef:
    """``churn`` (the champion), ``churn@challenger`` or ``churn@3``."""
    model, _, tail = text.partition("@")
    if not model or (("@" in text) and not tail):
        raise ScoreError(f"'{text}' is not MODEL, MODEL@ALIAS or MODEL@VERSION")
    if tail.isdigit():
        return ModelRef(model, None, int(tail))
    return ModelRef(model, tail or CHAMPION, None)


def resolve(registry: Registry, ref: ModelRef) -> ModelVersion:
    """The version ``ref`` names now (an alias is looked up at call time)."""
    try:
        if ref.version is not None:
            return registry.version(ref.model, ref.version)
        found = registry.get_alias(ref.model, ref.alias)
    except RegistryError as exc:
        raise ScoreError(str(exc)) from None
    if found is None:
        raise ScoreError(f"model '{ref.model}' has no version with alias '{ref.alias}'; "
                         "promote one (loopc run) or name a version: MODEL@VERSION")
    return found


def version_card(state: Path, version: ModelVersion) -> str | None:
    """The model card registered with ``version`` (``state/cards/MODEL-vN.md``), or None."""
    card_file = card_path(state, version.model, version.version)
    return card_file.read_text(encoding="utf-8") if card_file.is_file() else None


def version_bundle(state: Path, version: ModelVersion, *, card: str | None = None,
                   loopc_version: str = "0+unknown") -> Path:
    """The export bundle of ``version`` under ``state/bundles/`` (written once, then reused)."""
    folder = Path(state) / BUNDLES / f"{version.model}-v{version.version}"
    if (folder / "bundle.json").is_file():
        return folder
    if card is None:
        card = version_card(state, version)
    try:
        return write_bundle(local_artifact(state, version.artifact), folder, version=version.version, card=card,
                            loopc_version=loopc_version)
    except FileExistsError:
        return folder
    except OSError as exc:
        if (folder / "bundle.json").is_file():  # a concurrent scorer published it first
            return folder
        raise ScoreError(f"cannot write the bundle of {version.model} v{version.version} to {folder}: {exc}") from None
