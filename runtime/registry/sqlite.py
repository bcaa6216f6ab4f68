"""The embedded SQLite registry: WAL mode, IMMEDIATE transactions for every change, a hash-chained audit log."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from loopc.runtime import faults
from loopc.runtime.registry.interface import RegistryError
from loopc.runtime.registry.schema import SCHEMA_VERSION, TRIGGERS, upgrade_from_1, upgrade_from_2
from loopc.runtime.registry.sql import SqlRegistry, utc_now
from loopc.runtime.registry.sqlite_open import (
    check_file,
    connect_reader,
    connect_writer,
    create_database,
    schema_version,
)


class SqliteRegistry(SqlRegistry):
    """Registry in one SQLite file; safe for many processes on one machine."""

    backend_errors = (sqlite3.Error,)

    def __init__(self, path: str, *, read_only: bool = False, create: bool = False, timeout_s: float = 30.0,
                 clock: Callable[[], datetime] = utc_now):
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        self.label = str(self.path)
        self.read_only = read_only
        self._clock = clock
        created = create and not self.path.exists()
        if created:
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
            self.schema_on_open = 0 if created else self.schema
            if self.schema < SCHEMA_VERSION and not read_only:
                self.migrate()
        except BaseException:
            self._conn.close()
            raise

    def close(self) -> None:
        self._conn.close()

    def latest_schema(self) -> int:
        return SCHEMA_VERSION

    def migrate(self) -> int:
        """Bring an older registry to the current schema in one write transaction (re-checked inside);
        returns the version found before."""
        with self._write("upgrade") as conn:
            found = schema_version(conn, self.path)
            if found == 1:
                upgrade_from_1(conn, self._now())
            if found <= 2:
                upgrade_from_2(conn, self._now())
        self.schema = SCHEMA_VERSION
        return found

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

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN")  # one snapshot for every read inside
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    def _triggers(self, conn: sqlite3.Connection) -> tuple[dict[str, str], dict[str, str]]:
        found = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall())
        return found, TRIGGERS
