"""Open the SQLite registry file safely: refuse what is not a current loopc registry before touching it.

Order on open: the file's bytes are checked (missing, empty, not SQLite), then a connection reads
the schema version (not a loopc registry, newer than this loopc) before any DDL or PRAGMA that
writes. A new registry is built in a temporary file and linked into place, so a crash never
leaves a half-created (empty) registry behind.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path
from urllib.parse import quote

from loopc.runtime import faults
from loopc.runtime.registry.interface import RegistryError, RegistryMissing
from loopc.runtime.registry.schema import SCHEMA_VERSION, create_schema

SQLITE_MAGIC = b"SQLite format 3\x00"
_FIX = "restore it from a backup, or move it away to start a new registry"


def check_file(path: Path) -> None:
    """RegistryError unless ``path`` is a non-empty SQLite file (read without opening SQLite)."""
    if not path.exists():
        raise RegistryMissing(f"no registry at {path}; run the loop first (`loopc run SPEC`) or pass --root/--spec")
    if not path.is_file():
        raise RegistryError(f"registry {path} is not a file")
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise RegistryError(f"cannot read registry {path}: {error.strerror}; check the permissions") from None
    if not header:
        raise RegistryError(f"registry {path} is an empty file (0 bytes): its history is gone; {_FIX}; "
                            "the file was left as it is")
    if header != SQLITE_MAGIC:
        raise RegistryError(f"registry {path} is not a SQLite database (damaged or another file); {_FIX}; "
                            "the file was left as it is")


def schema_version(conn: sqlite3.Connection, path: Path) -> int:
    """The registry's schema version; RegistryError for a SQLite file that is no loopc registry or is newer."""
    try:
        known = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone() if known else None
    except sqlite3.DatabaseError as error:
        raise RegistryError(f"registry {path} cannot be read ({error}); {_FIX}; the file was left as it is") from None
    if row is None or row[0] is None:
        raise RegistryError(f"{path} is a SQLite database but not a loopc registry (no schema version); "
                            "point loopc at its registry.db; the file was left as it is")
    found = int(row[0])
    if found > SCHEMA_VERSION:
        raise RegistryError(f"registry {path} has schema version {found}, newer than this loopc ({SCHEMA_VERSION}); "
                            "upgrade loopc; the file was left as it is")
    return found


def connect_writer(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A read-write connection with connection-level settings only (nothing written to the file)."""
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    return _configured(conn, f"PRAGMA busy_timeout = {int(timeout_s * 1000)}", "PRAGMA synchronous = FULL",
                       "PRAGMA foreign_keys = ON")


def connect_reader(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A read-only connection (``mode=ro``, ``query_only``) that takes no write lock.

    In a read-only folder a WAL database without its ``-shm`` file cannot be opened ``mode=ro``;
    with no ``-wal`` file either, the main file holds everything and is opened ``immutable``.
    """
    target = quote(str(path.resolve()), safe="/")
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True, timeout=timeout_s, isolation_level=None)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as error:
        conn.close()
        wal = path.with_name(path.name + "-wal")
        if "unable to open" not in str(error) or os.access(path.parent, os.W_OK) or wal.exists():
            raise
        conn = sqlite3.connect(f"file:{target}?immutable=1", uri=True, timeout=timeout_s, isolation_level=None)
    return _configured(conn, f"PRAGMA busy_timeout = {int(timeout_s * 1000)}", "PRAGMA query_only = ON")


def _configured(conn: sqlite3.Connection, *pragmas: str) -> sqlite3.Connection:
    """Apply connection-level pragmas; the connection is closed if one fails."""
    try:
        for pragma in pragmas:
            conn.execute(pragma)
    except BaseException:
        conn.close()
        raise
    return conn


def create_database(path: Path, now: str) -> None:
    """Build a new registry beside ``path`` and link it into place; a concurrent creator's file wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        conn = sqlite3.connect(staging, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")
            create_schema(conn, now)
            conn.execute("COMMIT")
        finally:
            conn.close()
        _fsync(staging)
        faults.point("create.before_link")
        try:
            os.link(staging, path)
        except FileExistsError:
            pass
        _fsync(path.parent)
    finally:
        staging.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
