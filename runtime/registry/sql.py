"""The registry's operations in portable SQL, shared by the SQLite and PostgreSQL backends.

A backend supplies the connection (``_conn``, whose ``execute`` returns a cursor), the write
transaction (``_write``: the write lock is taken first, so reads inside are current), a read
snapshot for ``verify`` and the protective triggers it finds. SQL here uses ``?`` placeholders;
``_q`` turns them into the backend's style.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
from abc import abstractmethod
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from loopc.runtime import faults
from loopc.runtime.registry.chain import alias_problems, chain_problems, entry_hash, trigger_problems
from loopc.runtime.registry.interface import (
    ARCHIVED,
    CHALLENGER,
    CHAMPION,
    AliasConflict,
    AuditEntry,
    Event,
    ModelVersion,
    Registry,
    RegistryError,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION_COLUMNS = "model, version, created_at, artifact, spec_hash, status, lineage, metrics, gate"
_AUDIT_COLUMNS = "id, at, actor, action, model, version, alias, from_version, reason, details"
_CHAINED_COLUMNS = _AUDIT_COLUMNS + ", event_key, prev_hash, hash"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RegistryError(f"invalid {kind} {value!r}: use letters, digits, '_', '.' or '-' (at most 128)")
    return value


def reads(method):
    """Turn a backend error of a read into a RegistryError naming the registry."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except self.backend_errors as error:
            raise RegistryError(f"registry {self.label}: {_first_line(error)}") from None

    return wrapper


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class SqlRegistry(Registry):
    """Every registry operation over a DB-API-like connection; subclasses open and lock it."""

    label: str  # what messages call the registry: a file path, or a URL without its password
    schema: int
    schema_on_open: int  # the schema version found when opened, before any migration (0: created then)
    backend_errors: tuple[type[BaseException], ...] = ()
    _clock: Callable[[], datetime] = staticmethod(utc_now)

    def _now(self) -> str:
        return stamp(self._clock())

    def _q(self, sql: str) -> str:
        """``sql`` in the backend's placeholder style (SQLite: ``?`` as written)."""
        return sql

    def _x(self, conn, sql: str, params: tuple = ()):
        return conn.execute(self._q(sql), params)

    @abstractmethod
    def _write(self, operation: str) -> contextlib.AbstractContextManager[Any]:
        """One write transaction holding the registry's write lock; kill points ``<operation>.before_commit``
        and ``<operation>.after_commit``; backend errors become RegistryError naming the registry."""

    @abstractmethod
    def _snapshot(self) -> contextlib.AbstractContextManager[Any]:
        """A read transaction: every read inside sees the same committed state."""

    @abstractmethod
    def _triggers(self, conn) -> tuple[Mapping[str, str], Mapping[str, str]]:
        """(protective triggers found: name -> definition, loopc's definitions)."""

    @abstractmethod
    def latest_schema(self) -> int:
        """The schema version this loopc writes; a registry whose ``schema`` is lower needs ``migrate``."""

    @abstractmethod
    def migrate(self) -> int:
        """Bring the schema to the current version (idempotent); return the version found before."""

    # ------------------------------------------------------------------ versions

    def register_version(self, model, *, artifact, spec_hash, lineage, metrics, gate, actor) -> ModelVersion:
        _name("model name", model)
        status = str(gate.get("status", "registered")) if gate else "registered"
        with self._write("register") as conn:
            existing = self._by_artifact(conn, model, artifact)
            if existing is not None:
                return existing
            number = self._x(
                conn, "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = ?", (model,)
            ).fetchone()[0]
            now = self._now()
            self._x(
                conn,
                "INSERT INTO model_versions (model, version, created_at, artifact, spec_hash, lineage, metrics, gate,"
                " status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model, number, now, artifact, spec_hash, _json(lineage), _json(metrics),
                    None if gate is None else _json(gate), status,
                ),
            )  # fmt: skip
            faults.point("register.after_insert")
            self._audit(conn, actor, "register", model, number, None, None, "", {"artifact": artifact})
            return self._version(conn, model, number)

    @reads
    def versions(self, model: str) -> list[ModelVersion]:
        rows = self._x(
            self._conn, f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? ORDER BY version", (model,)
        ).fetchall()
        return [_model_version(row) for row in rows]

    @reads
    def version(self, model: str, number: int) -> ModelVersion:
        return self._version(self._conn, model, number)

    @reads
    def models(self) -> list[str]:
        rows = self._x(self._conn, "SELECT DISTINCT model FROM model_versions ORDER BY model").fetchall()
        return [row[0] for row in rows]

    @reads
    def find_by_artifact(self, model: str, artifact: str) -> ModelVersion | None:
        return self._by_artifact(self._conn, model, artifact)

    def _by_artifact(self, conn, model: str, artifact: str) -> ModelVersion | None:
        row = self._x(
            conn, f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND artifact = ?", (model, artifact)
        ).fetchone()
        return None if row is None else _model_version(row)

    def _version(self, conn, model: str, number: int) -> ModelVersion:
        row = None
        if -(2**63) <= int(number) < 2**63:  # a version column's range: a number beyond it names no version
            row = self._x(
                conn, f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND version = ?",
                (model, int(number)),
            ).fetchone()
        if row is not None:
            return _model_version(row)
        latest = self._x(conn, "SELECT MAX(version) FROM model_versions WHERE model = ?", (model,)).fetchone()[0]
        if latest is None:
            known = [r[0] for r in self._x(conn, "SELECT DISTINCT model FROM model_versions ORDER BY model")]
            raise RegistryError(
                f"unknown model '{model}' in registry {self.label}; known models: {', '.join(known) or 'none'}"
            )
        raise RegistryError(f"model '{model}' has no version {number}; versions are 1..{latest}")

    # ------------------------------------------------------------------ aliases

    def set_alias(self, model, alias, version, *, actor, reason, expect_current=None) -> None:
        _name("alias", alias)
        with self._write("set_alias") as conn:
            self._version(conn, model, version)
            current = self._alias(conn, model, alias)
            _check_expected(model, alias, current, expect_current)
            if current != version:
                self._move(conn, model, alias, version, current, actor=actor, action="set_alias", reason=reason,
                           operation="set_alias")

    def promote(self, model, version, *, actor, reason, expect_current=None, event: Event | None = None):
        with self._write("promote") as conn:
            self._version(conn, model, version)
            current = self._alias(conn, model, CHAMPION)
            if current != version:
                _check_expected(model, CHAMPION, current, expect_current)
                if event is not None:
                    _name("action", event.action)
                    self._audit(conn, actor, event.action, model, version, None, None, event.reason, event.details)
                    faults.point("promote.after_event")
                self._move(conn, model, CHAMPION, version, current, actor=actor, action="set_alias", reason=reason,
                           operation="promote")
            if self._alias(conn, model, CHALLENGER) == version:
                self._x(conn, "DELETE FROM aliases WHERE model = ? AND alias = ?", (model, CHALLENGER))
                faults.point("promote.after_clear")
                self._audit(conn, actor, "remove_alias", model, None, CHALLENGER, version,
                            f"version {version} became {CHAMPION}", {})
            return current if current != version else None

    def remove_alias(self, model: str, alias: str, *, actor: str, reason: str) -> None:
        with self._write("remove_alias") as conn:
            current = self._alias(conn, model, alias)
            if current is not None:
                self._x(conn, "DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))
                self._audit(conn, actor, "remove_alias", model, None, alias, current, reason, {})

    def rollback(self, model: str, *, actor: str, reason: str) -> ModelVersion:
        with self._write("rollback") as conn:
            current = self._alias(conn, model, CHAMPION)
            if current is None:
                raise RegistryError(f"model '{model}' has no champion to roll back; promote a version first")
            row = self._x(
                conn,
                "SELECT from_version FROM audit_log WHERE model = ? AND alias = ? AND action = 'set_alias'"
                " AND version = ? ORDER BY id DESC LIMIT 1",
                (model, CHAMPION, current),
            ).fetchone()
            if row is None or row[0] is None:
                raise RegistryError(
                    f"model '{model}': champion v{current} has no earlier champion to roll back to; "
                    "set the champion alias to a chosen version instead"
                )
            self._move(conn, model, CHAMPION, row[0], current, actor=actor, action="rollback", reason=reason,
                       operation="rollback")
            return self._version(conn, model, row[0])

    @reads
    def get_alias(self, model: str, alias: str) -> ModelVersion | None:
        number = self._alias(self._conn, model, alias)
        return None if number is None else self._version(self._conn, model, number)

    @reads
    def aliases(self, model: str) -> dict[str, int]:
        rows = self._x(self._conn, "SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,))
        return {alias: int(version) for alias, version in rows}

    def _alias(self, conn, model: str, alias: str) -> int | None:
        row = self._x(conn, "SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)).fetchone()
        return None if row is None else int(row[0])

    def _move(self, conn, model, alias, version, current, *, actor, action, reason, operation) -> None:
        """Point ``alias`` at ``version`` and audit it; a replaced champion becomes ``archived``.

        ``operation`` names the kill points (``promote.after_alias``, ``promote.after_archive``).
        """
        self._upsert_alias(conn, model, alias, version)
        faults.point(f"{operation}.after_alias")
        self._audit(conn, actor, action, model, version, alias, current, reason, {})
        if alias != CHAMPION:
            return
        self._set_status(conn, model, version, CHAMPION)
        if current is None:
            return
        archived = self._alias(conn, model, ARCHIVED)
        self._upsert_alias(conn, model, ARCHIVED, current)
        self._set_status(conn, model, current, ARCHIVED)
        faults.point(f"{operation}.after_archive")
        why = f"replaced as champion by v{version}"
        self._audit(conn, actor, "set_alias", model, current, ARCHIVED, archived, why, {})

    def _set_status(self, conn, model: str, version: int, status: str) -> None:
        self._x(conn, "UPDATE model_versions SET status = ? WHERE model = ? AND version = ?", (status, model, version))

    def _upsert_alias(self, conn, model: str, alias: str, version: int) -> None:
        self._x(
            conn,
            "INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            (model, alias, version, self._now()),
        )

    # ------------------------------------------------------------------ audit log

    @reads
    def audit_log(self, model: str | None = None) -> list[AuditEntry]:
        if model is None:
            rows = self._x(self._conn, f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY id").fetchall()
        else:
            rows = self._x(
                self._conn, f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE model = ? ORDER BY id", (model,)
            ).fetchall()
        return [_audit_entry(row) for row in rows]

    def record_event(self, action, model, version, actor, reason, details=None, event_key=None) -> AuditEntry:
        _name("action", action)
        with self._write("event") as conn:
            if event_key is not None:
                row = self._x(conn, f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE event_key = ?",
                              (event_key,)).fetchone()
                if row is not None:
                    return _audit_entry(row)
            if version is not None:
                self._version(conn, model, version)
            entry_id = self._audit(conn, actor, action, model, version, None, None, reason, details or {}, event_key)
            faults.point("event.after_insert")
            row = self._x(conn, f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE id = ?", (entry_id,)).fetchone()
        return _audit_entry(row)

    def _audit(self, conn, actor, action, model, version, alias, from_version, reason, details, event_key=None) -> int:
        """Append one entry chained to the audit head, and move the head (inside the caller's transaction)."""
        if not actor:
            raise RegistryError(f"{action} on model '{model}' needs an actor (who did it) for the audit log")
        head = self._x(conn, "SELECT last_id, hash FROM audit_head WHERE singleton = 1").fetchone()
        if head is None:
            raise RegistryError(f"registry {self.label}: the audit head is missing; run `loopc registry verify`")
        fields = (int(head[0]) + 1, self._now(), actor, action, model, version, alias, from_version, reason or "",
                  _json(details), event_key)
        digest = entry_hash(head[1], fields)
        self._x(
            conn,
            "INSERT INTO audit_log (id, at, actor, action, model, version, alias, from_version, reason, details,"
            " event_key, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, head[1], digest),
        )
        self._x(conn, "UPDATE audit_head SET last_id = ?, hash = ? WHERE singleton = 1", (fields[0], digest))
        return fields[0]

    # ------------------------------------------------------------------ verify

    @reads
    def verify(self) -> list[str]:
        if self.schema < self.latest_schema():
            chain = ", without the audit hash chain" if self.schema < 2 else ""
            return [f"registry {self.label} has schema version {self.schema} (this loopc's is "
                    f"{self.latest_schema()}){chain}; the next loopc command that writes to it upgrades it "
                    "(or `loopc registry migrate`)"]
        with self._snapshot() as conn:
            rows = [dict(zip(_CHAINED_COLUMNS.split(", "), row)) for row in
                    self._x(conn, f"SELECT {_CHAINED_COLUMNS} FROM audit_log ORDER BY id")]
            head = self._x(conn, "SELECT last_id, hash FROM audit_head WHERE singleton = 1").fetchone()
            found, expected = self._triggers(conn)
            aliases = {(m, a): v for m, a, v in self._x(conn, "SELECT model, alias, version FROM aliases")}
            statuses = {(m, v): s for m, v, s in self._x(conn, "SELECT model, version, status FROM model_versions")}
        return (trigger_problems(found, expected) + chain_problems(rows, None if head is None else tuple(head))
                + alias_problems(rows, aliases, statuses))


def _check_expected(model: str, alias: str, current: int | None, expect_current: int | None) -> None:
    if expect_current is not None and (current or 0) != expect_current:
        raise AliasConflict(
            f"alias '{alias}' of model '{model}' points at {_describe(current)}, not "
            f"{_describe(expect_current or None)} as expected; another promotion won, re-read and retry"
        )


def _describe(version: int | None) -> str:
    return "no version" if version is None else f"v{version}"


def _model_version(row: tuple) -> ModelVersion:
    model, version, created_at, artifact, spec_hash, status, lineage, metrics, gate = row
    return ModelVersion(
        model=model, version=int(version), created_at=created_at, artifact=artifact, spec_hash=spec_hash,
        status=status, lineage=json.loads(lineage), metrics=json.loads(metrics),
        gate=None if gate is None else json.loads(gate),
    )  # fmt: skip


def _audit_entry(row: tuple) -> AuditEntry:
    entry_id, at, actor, action, model, version, alias, from_version, reason, details = row
    return AuditEntry(
        id=int(entry_id), at=at, actor=actor, action=action, model=model, version=version,
        alias=alias, from_version=from_version, reason=reason, details=json.loads(details),
    )  # fmt: skip
