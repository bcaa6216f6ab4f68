"""The embedded SQLite registry: WAL mode, IMMEDIATE transactions for every change, a hash-chained audit log."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from loopc.runtime.registry import faults
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
from loopc.runtime.registry.schema import SCHEMA_VERSION, TRIGGERS, upgrade_from_1
from loopc.runtime.registry.sqlite_open import (
    check_file,
    connect_reader,
    connect_writer,
    create_database,
    schema_version,
)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_VERSION_COLUMNS = "model, version, created_at, artifact, spec_hash, status, lineage, metrics, gate"
_AUDIT_COLUMNS = "id, at, actor, action, model, version, alias, from_version, reason, details"
_CHAINED_COLUMNS = _AUDIT_COLUMNS + ", event_key, prev_hash, hash"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _name(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise RegistryError(f"invalid {kind} {value!r}: use letters, digits, '_', '.' or '-' (at most 128)")
    return value


def _reads(method):
    """Turn SQLite errors of a read into a RegistryError naming the registry."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as error:
            raise RegistryError(f"registry {self.path}: {error}") from None

    return wrapper


class SqliteRegistry(Registry):
    """Registry in one SQLite file; safe for many processes on one machine."""

    def __init__(self, path: str, *, read_only: bool = False, create: bool = False, timeout_s: float = 30.0,
                 clock: Callable[[], datetime] = utc_now):
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        self.read_only = read_only
        self._clock = clock
        if create and not self.path.exists():
            try:
                create_database(self.path, self._now())
            except (sqlite3.Error, OSError) as error:
                raise RegistryError(f"cannot create registry {self.path}: {error}; check the folder") from None
        check_file(self.path)
        try:
            self._conn = (connect_reader if read_only else connect_writer)(self.path, timeout_s)
        except sqlite3.Error as error:
            raise RegistryError(f"cannot open registry {self.path}: {error}; check the path and permissions") from None
        try:
            self.schema = schema_version(self._conn, self.path)
            if self.schema < SCHEMA_VERSION and not read_only:
                self._upgrade()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def _now(self) -> str:
        return _stamp(self._clock())

    def _upgrade(self) -> None:
        """Bring an older registry to the current schema in one write transaction (re-checked inside)."""
        with self._write("upgrade") as conn:
            found = schema_version(conn, self.path)
            if found == 1:
                upgrade_from_1(conn, self._now())
        self.schema = SCHEMA_VERSION

    @contextlib.contextmanager
    def _write(self, operation: str) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction: the write lock is taken up front, so reads inside are current."""
        if self.read_only:
            raise RegistryError(f"registry {self.path} was opened read-only; {operation} needs a writer")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise RegistryError(f"registry {self.path} is busy ({error}); retry when other writers finish") from None
        try:
            yield self._conn
            faults.point(f"{operation}.before_commit")
            self._conn.execute("COMMIT")
        except sqlite3.Error as error:
            self._rollback()
            raise RegistryError(f"registry {self.path}: {error}") from None
        except BaseException:
            self._rollback()
            raise
        faults.point(f"{operation}.after_commit")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    # ------------------------------------------------------------------ versions

    def register_version(self, model, *, artifact, spec_hash, lineage, metrics, gate, actor) -> ModelVersion:
        _name("model name", model)
        status = str(gate.get("status", "registered")) if gate else "registered"
        with self._write("register") as conn:
            existing = self._by_artifact(conn, model, artifact)
            if existing is not None:
                return existing
            number = conn.execute(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE model = ?", (model,)
            ).fetchone()[0]
            now = self._now()
            conn.execute(
                "INSERT INTO model_versions (model, version, created_at, artifact, spec_hash, step_fingerprints,"
                " dataset_fingerprints, code_version, seed, lineage, metrics, gate, status)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model, number, now, artifact, spec_hash,
                    _json(lineage.get("step_fingerprints", {})), _json(lineage.get("dataset_fingerprints", {})),
                    lineage.get("code_version"), lineage.get("seed"), _json(lineage), _json(metrics),
                    None if gate is None else _json(gate), status,
                ),
            )  # fmt: skip
            faults.point("register.after_insert")
            self._audit(conn, actor, "register", model, number, None, None, "", {"artifact": artifact})
            return self._version(conn, model, number)

    @_reads
    def versions(self, model: str) -> list[ModelVersion]:
        rows = self._conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? ORDER BY version", (model,)
        ).fetchall()
        return [_model_version(row) for row in rows]

    @_reads
    def version(self, model: str, number: int) -> ModelVersion:
        return self._version(self._conn, model, number)

    @_reads
    def models(self) -> list[str]:
        rows = self._conn.execute("SELECT DISTINCT model FROM model_versions ORDER BY model").fetchall()
        return [row[0] for row in rows]

    @_reads
    def find_by_artifact(self, model: str, artifact: str) -> ModelVersion | None:
        return self._by_artifact(self._conn, model, artifact)

    def _by_artifact(self, conn: sqlite3.Connection, model: str, artifact: str) -> ModelVersion | None:
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND artifact = ?", (model, artifact)
        ).fetchone()
        return None if row is None else _model_version(row)

    def _version(self, conn: sqlite3.Connection, model: str, number: int) -> ModelVersion:
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM model_versions WHERE model = ? AND version = ?", (model, int(number))
        ).fetchone()
        if row is not None:
            return _model_version(row)
        latest = conn.execute("SELECT MAX(version) FROM model_versions WHERE model = ?", (model,)).fetchone()[0]
        if latest is None:
            known = [r[0] for r in conn.execute("SELECT DISTINCT model FROM model_versions ORDER BY model")]
            raise RegistryError(
                f"unknown model '{model}' in registry {self.path}; known models: {', '.join(known) or 'none'}"
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
                conn.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, CHALLENGER))
                faults.point("promote.after_clear")
                self._audit(conn, actor, "remove_alias", model, None, CHALLENGER, version,
                            f"version {version} became {CHAMPION}", {})
            return current if current != version else None

    def remove_alias(self, model: str, alias: str, *, actor: str, reason: str) -> None:
        with self._write("remove_alias") as conn:
            current = self._alias(conn, model, alias)
            if current is not None:
                conn.execute("DELETE FROM aliases WHERE model = ? AND alias = ?", (model, alias))
                self._audit(conn, actor, "remove_alias", model, None, alias, current, reason, {})

    def rollback(self, model: str, *, actor: str, reason: str) -> ModelVersion:
        with self._write("rollback") as conn:
            current = self._alias(conn, model, CHAMPION)
            if current is None:
                raise RegistryError(f"model '{model}' has no champion to roll back; promote a version first")
            row = conn.execute(
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

    @_reads
    def get_alias(self, model: str, alias: str) -> ModelVersion | None:
        number = self._alias(self._conn, model, alias)
        return None if number is None else self._version(self._conn, model, number)

    @_reads
    def aliases(self, model: str) -> dict[str, int]:
        rows = self._conn.execute("SELECT alias, version FROM aliases WHERE model = ? ORDER BY alias", (model,))
        return {alias: version for alias, version in rows}

    def _alias(self, conn: sqlite3.Connection, model: str, alias: str) -> int | None:
        row = conn.execute("SELECT version FROM aliases WHERE model = ? AND alias = ?", (model, alias)).fetchone()
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
        conn.execute("UPDATE model_versions SET status = ? WHERE model = ? AND version = ?", (CHAMPION, model, version))
        if current is None:
            return
        archived = self._alias(conn, model, ARCHIVED)
        self._upsert_alias(conn, model, ARCHIVED, current)
        conn.execute("UPDATE model_versions SET status = ? WHERE model = ? AND version = ?", (ARCHIVED, model, current))
        faults.point(f"{operation}.after_archive")
        why = f"replaced as champion by v{version}"
        self._audit(conn, actor, "set_alias", model, current, ARCHIVED, archived, why, {})

    def _upsert_alias(self, conn: sqlite3.Connection, model: str, alias: str, version: int) -> None:
        conn.execute(
            "INSERT INTO aliases (model, alias, version, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (model, alias) DO UPDATE SET version = excluded.version, updated_at = excluded.updated_at",
            (model, alias, version, self._now()),
        )

    # ------------------------------------------------------------------ audit log

    @_reads
    def audit_log(self, model: str | None = None) -> list[AuditEntry]:
        if model is None:
            rows = self._conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY id").fetchall()
        else:
            rows = self._conn.execute(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE model = ? ORDER BY id", (model,)
            ).fetchall()
        return [_audit_entry(row) for row in rows]

    def record_event(self, action, model, version, actor, reason, details=None, event_key=None) -> AuditEntry:
        _name("action", action)
        with self._write("event") as conn:
            if event_key is not None:
                row = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE event_key = ?",
                                   (event_key,)).fetchone()
                if row is not None:
                    return _audit_entry(row)
            if version is not None:
                self._version(conn, model, version)
            entry_id = self._audit(conn, actor, action, model, version, None, None, reason, details or {}, event_key)
            faults.point("event.after_insert")
            row = conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit_log WHERE id = ?", (entry_id,)).fetchone()
        return _audit_entry(row)

    def _audit(self, conn, actor, action, model, version, alias, from_version, reason, details, event_key=None) -> int:
        """Append one entry chained to the audit head, and move the head (inside the caller's transaction)."""
        if not actor:
            raise RegistryError(f"{action} on model '{model}' needs an actor (who did it) for the audit log")
        head = conn.execute("SELECT last_id, hash FROM audit_head WHERE singleton = 1").fetchone()
        if head is None:
            raise RegistryError(f"registry {self.path}: the audit head is missing; run `loopc registry verify`")
        fields = (head[0] + 1, self._now(), actor, action, model, version, alias, from_version, reason or "",
                  _json(details), event_key)
        digest = entry_hash(head[1], fields)
        conn.execute(
            "INSERT INTO audit_log (id, at, actor, action, model, version, alias, from_version, reason, details,"
            " event_key, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*fields, head[1], digest),
        )
        conn.execute("UPDATE audit_head SET last_id = ?, hash = ? WHERE singleton = 1", (fields[0], digest))
        return fields[0]

    # ------------------------------------------------------------------ verify

    @_reads
    def verify(self) -> list[str]:
        if self.schema < SCHEMA_VERSION:
            return [f"registry {self.path} has schema version {self.schema}, without the audit hash chain; "
                    "the next loopc command that writes to it upgrades it"]
        conn = self._conn
        conn.execute("BEGIN")  # one snapshot for every read below
        try:
            rows = [dict(zip(_CHAINED_COLUMNS.split(", "), row)) for row in
                    conn.execute(f"SELECT {_CHAINED_COLUMNS} FROM audit_log ORDER BY id")]
            head = conn.execute("SELECT last_id, hash FROM audit_head WHERE singleton = 1").fetchone()
            triggers = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())
            aliases = {(m, a): v for m, a, v in conn.execute("SELECT model, alias, version FROM aliases")}
            statuses = {(m, v): s for m, v, s in conn.execute("SELECT model, version, status FROM model_versions")}
        finally:
            conn.execute("COMMIT")
        return (trigger_problems(triggers, TRIGGERS) + chain_problems(rows, None if head is None else tuple(head))
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
