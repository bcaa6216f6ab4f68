"""The registry on PostgreSQL (psycopg 3): many machines, one truth.

Every change is one READ COMMITTED transaction that first locks the audit head row
(``SELECT ... FOR UPDATE``): writers queue there, so each one reads the state the previous
committed and appends to the hash chain after it — exactly one champion however many processes
promote at once. The schema is migrated by numbered steps (``postgres_schema.MIGRATIONS``);
a database whose schema is newer than this loopc is refused. Messages name the URL without its password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import psycopg

from loopc.runtime import faults
from loopc.runtime.registry.interface import RegistryError, RegistryMissing
from loopc.runtime.registry.postgres_schema import MIGRATION_LOCK, MIGRATIONS, SCHEMA_VERSION, TRIGGERS
from loopc.runtime.registry.sql import SqlRegistry, _first_line, utc_now

_OURS = ("model_versions", "aliases", "audit_log")


def redacted(url: str) -> str:
    """``url`` with its password replaced by ``***`` (user, host, port, database kept)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.hostname or ""
        netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparsable registry URL>"


class PostgresRegistry(SqlRegistry):
    """Registry in a PostgreSQL database selected by a ``postgresql://`` URL (libpq syntax)."""

    backend_errors = (psycopg.Error,)

    def __init__(self, url: str, *, read_only: bool = False, create: bool = False, timeout_s: float = 30.0,
                 clock: Callable[[], datetime] = utc_now):
        self.url = url
        self.label = redacted(url)
        self.read_only = read_only
        self._clock = clock
        try:
            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=max(1, int(timeout_s)))
        except psycopg.Error as error:
            raise RegistryError(f"cannot connect to registry {self.label}: {_first_line(error)}; "
                                "check that the server runs and the URL, user and network are right") from None
        try:
            self._open(create)
        except psycopg.Error as error:
            self._conn.close()
            raise RegistryError(f"registry {self.label}: {_first_line(error)}") from None
        except BaseException:
            self._conn.close()
            raise

    def _open(self, create: bool) -> None:
        if self.read_only:
            self._conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        self.schema = self.schema_on_open = self._found_schema(self._conn)
        if self.schema == 0 and not create:
            raise RegistryMissing(f"no loopc registry in {self.label} (the database has no loopc tables); "
                                "create it with `loopc registry migrate --registry URL` or run the loop")
        if self.schema < SCHEMA_VERSION and not self.read_only:
            self.migrate()

    def _found_schema(self, conn) -> int:
        """0 for a database without loopc tables; RegistryError for foreign tables or a newer schema."""
        known = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not known:
            clash = [t for t in _OURS if conn.execute("SELECT to_regclass(%s)", (t,)).fetchone()[0] is not None]
            if clash:
                raise RegistryError(f"{self.label} holds tables named {', '.join(clash)} but no loopc schema "
                                    "version: not a loopc registry; use another database; nothing was changed")
            return 0
        found = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if found > SCHEMA_VERSION:
            raise RegistryError(f"registry {self.label} has schema version {found}, newer than this loopc "
                                f"({SCHEMA_VERSION}); upgrade loopc; nothing was changed")
        return int(found)

    def close(self) -> None:
        self._conn.close()

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def latest_schema(self) -> int:
        return SCHEMA_VERSION

    def migrate(self) -> int:
        """Apply the missing migrations in one transaction (serialized by an advisory lock); returns
        the version found before."""
        if self.read_only:
            raise RegistryError(f"registry {self.label} was opened read-only; migrate needs a writer")
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                found = self._found_schema(self._conn)
                for number in range(found + 1, SCHEMA_VERSION + 1):
                    for statement in MIGRATIONS[number]:
                        self._conn.execute(statement)
                    self._conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                                       (number, self._now()))
        except psycopg.Error as error:
            raise RegistryError(f"cannot migrate registry {self.label}: {_first_line(error)}") from None
        self.schema = SCHEMA_VERSION
        return found

    @contextlib.contextmanager
    def _write(self, operation: str) -> Iterator[psycopg.Connection]:
        """One transaction that locks the audit head first: writers run one after another."""
        if self.read_only:
            raise RegistryError(f"registry {self.label} was opened read-only; {operation} needs a writer")
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT last_id FROM audit_head WHERE singleton = 1 FOR UPDATE")
                yield self._conn
                faults.point(f"{operation}.before_commit")
        except psycopg.Error as error:
            raise RegistryError(f"registry {self.label}: {_first_line(error)}; {operation} was not applied "
                                "(nothing half-written); retry when the server is reachable") from None
        faults.point(f"{operation}.after_commit")

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[psycopg.Connection]:
        self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    def _triggers(self, conn) -> tuple[dict[str, str], dict[str, str]]:
        rows = conn.execute(
            "SELECT t.tgname, c.relname, t.tgenabled, p.prosrc FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid"
            " WHERE NOT t.tgisinternal AND c.relnamespace = to_regnamespace(current_schema())::oid"
        ).fetchall()
        found = {name: f"{table} {enabled} {source}" for name, table, enabled, source in rows}
        expected = {name: f"{table} O {body}" for name, (table, _, body) in TRIGGERS.items()}
        return found, expected
