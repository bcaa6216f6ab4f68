"""Model registry interface: versions with lineage, aliases, and an append-only audit log."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

CHAMPION = "champion"
CHALLENGER = "challenger"
ARCHIVED = "archived"
NO_VERSION = 0  # expect_current=NO_VERSION: "I expect the alias to be unset"


class RegistryError(Exception):
    """A registry operation failed: unknown model or version, bad URL, locked, missing or damaged database.

    The message says what, where and how to fix it; it is shown without a traceback.
    """


class RegistryMissing(RegistryError):
    """No registry exists at the URL yet (no SQLite file; a PostgreSQL database without loopc's tables)."""


class AliasConflict(RegistryError):
    """An alias moved since the caller looked at it (optimistic check ``expect_current``)."""


@dataclass(frozen=True)
class ModelVersion:
    """One registered version of a model, with what it was made from and how it scored.

    ``status`` starts as the gate's status (``passed``, ``rejected``, ``needs_approval``,
    ``overridden``) or ``registered`` without a gate; it becomes ``champion`` on promotion
    and ``archived`` when a newer champion replaces it.
    """

    model: str
    version: int
    created_at: str
    artifact: str
    spec_hash: str
    status: str
    lineage: dict[str, Any] = field(default_factory=dict, hash=False)
    metrics: dict[str, Any] = field(default_factory=dict, hash=False)
    gate: dict[str, Any] | None = field(default=None, hash=False)

    @property
    def step_fingerprints(self) -> dict[str, str]:
        return dict(self.lineage.get("step_fingerprints", {}))

    @property
    def dataset_fingerprints(self) -> dict[str, str]:
        return dict(self.lineage.get("dataset_fingerprints", {}))

    @property
    def code_version(self) -> str | None:
        return self.lineage.get("code_version")

    @property
    def seed(self) -> int | None:
        return self.lineage.get("seed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AuditEntry:
    """One line of the append-only audit log: who did what to which model version, when and why."""

    id: int
    at: str
    actor: str
    action: str
    model: str
    version: int | None
    alias: str | None
    from_version: int | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """An audit event written in the same transaction as the change it explains."""

    action: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict, hash=False)


class Registry(ABC):
    """What the runtime needs from a model registry.

    Every change runs in ONE transaction together with its audit entries: a change is either
    complete and audited or absent. Audit entries form a hash chain (``chain.entry_hash``), appended
    under the write lock. A registry opened read-only never writes and never blocks a writer.

    :func:`loopc.runtime.registry.connect.open_registry` picks the implementation from a URL;
    each backend is one module beside this one that implements these abstract methods.
    """

    url: str

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def register_version(
        self,
        model: str,
        *,
        artifact: str,
        spec_hash: str,
        lineage: dict[str, Any],
        metrics: dict[str, Any],
        gate: dict[str, Any] | None,
        actor: str,
    ) -> ModelVersion:
        """Add the next version of ``model`` (1, 2, ...) and audit it.

        ``lineage`` holds ``step_fingerprints``, ``dataset_fingerprints``, ``code_version``
        and ``seed`` (and may hold more). Registering an artifact already registered for
        the model returns that version unchanged: re-runs on unchanged inputs add nothing.
        """

    @abstractmethod
    def set_alias(
        self, model: str, alias: str, version: int, *, actor: str, reason: str, expect_current: int | None = None
    ) -> None:
        """Point ``alias`` at ``version`` in one transaction with its audit entry.

        Moving ``champion`` also moves the replaced champion to ``archived``.
        ``expect_current`` (a version number, or NO_VERSION for "unset") makes the move
        conditional: AliasConflict if the alias points elsewhere by the time we write.
        """

    @abstractmethod
    def promote(
        self, model: str, version: int, *, actor: str, reason: str, expect_current: int | None = None,
        event: Event | None = None,
    ) -> int | None:
        """Make ``version`` champion in ONE transaction and return the champion it replaced.

        The transaction writes ``event`` (if any), moves the champion alias, archives the replaced
        champion, removes the challenger alias when it points at ``version``, and audits each.
        ``expect_current`` as in :meth:`set_alias`; promoting the current champion again changes
        nothing but a challenger alias left on it (idempotent, so a resumed run can repeat it).
        """

    @abstractmethod
    def remove_alias(self, model: str, alias: str, *, actor: str, reason: str) -> None:
        """Unset ``alias`` (audited); nothing happens when it is not set."""

    @abstractmethod
    def get_alias(self, model: str, alias: str) -> ModelVersion | None:
        """The version ``alias`` points at, or None."""

    @abstractmethod
    def aliases(self, model: str) -> dict[str, int]:
        """Every alias of ``model`` and its version, sorted by alias."""

    @abstractmethod
    def versions(self, model: str) -> list[ModelVersion]:
        """Every version of ``model``, oldest first (empty for a model never registered)."""

    @abstractmethod
    def version(self, model: str, number: int) -> ModelVersion:
        """Version ``number`` of ``model``; RegistryError names an unknown model or version."""

    @abstractmethod
    def models(self) -> list[str]:
        """Names of every model with at least one version, sorted."""

    @abstractmethod
    def find_by_artifact(self, model: str, artifact: str) -> ModelVersion | None:
        """The version of ``model`` registered for ``artifact``, or None."""

    @abstractmethod
    def audit_log(self, model: str | None = None) -> list[AuditEntry]:
        """Audit entries (of one model, or all), oldest first."""

    @abstractmethod
    def record_event(
        self,
        action: str,
        model: str,
        version: int | None,
        actor: str,
        reason: str,
        details: dict[str, Any] | None = None,
        event_key: str | None = None,
    ) -> AuditEntry:
        """Append an event (gate override, approval, monitor breach, ...) to the audit log.

        With ``event_key`` (e.g. run id and step id) the event is recorded once: a repeat with the
        same key returns the entry already there.
        """

    @abstractmethod
    def rollback(self, model: str, *, actor: str, reason: str) -> ModelVersion:
        """Make the champion before the current one champion again, per the audit trail.

        Successive rollbacks walk further back through earlier promotions.
        """

    @abstractmethod
    def verify(self) -> list[str]:
        """Problems found, one line each (empty: clean): the audit hash chain, the protective
        triggers, and the aliases and statuses against a replay of the audit log."""
