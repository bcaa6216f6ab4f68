"""SQL schema of the embedded SQLite registry (version 3), and the upgrades from versions 1 and 2.

The schema is created once, when the registry file is created (see ``sqlite.create_database``), and
upgraded only by a writer after the version check; opening an existing registry runs no DDL.
"""

from __future__ import annotations

import sqlite3

from loopc.runtime.registry.chain import GENESIS_HASH, entry_hash

SCHEMA_VERSION = 3

# Version 1's tables. Portable SQL where possible: JSON is stored as TEXT, times as ISO-8601 UTC.
TABLES = """
CREATE TABLE schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE model_versions (
    model                TEXT    NOT NULL,
    version              INTEGER NOT NULL,
    created_at           TEXT    NOT NULL,
    artifact             TEXT    NOT NULL,
    spec_hash            TEXT    NOT NULL,
    step_fingerprints    TEXT    NOT NULL DEFAULT '{}',
    dataset_fingerprints TEXT    NOT NULL DEFAULT '{}',
    code_version         TEXT,
    seed                 INTEGER,
    lineage              TEXT    NOT NULL DEFAULT '{}',
    metrics              TEXT    NOT NULL DEFAULT '{}',
    gate                 TEXT,
    status               TEXT    NOT NULL,
    PRIMARY KEY (model, version),
    UNIQUE (model, artifact)
);
CREATE TABLE aliases (
    model       TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    at            TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    version       INTEGER,
    alias         TEXT,
    from_version  INTEGER,
    reason        TEXT    NOT NULL DEFAULT '',
    details       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_model ON audit_log (model, id);
"""

# Version 2: every audit entry is chained to the one before by hash; events recorded "once" carry a key.
CHAIN = """
ALTER TABLE audit_log ADD COLUMN event_key TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX audit_log_event_key ON audit_log (event_key);
CREATE TABLE audit_head (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id    INTEGER NOT NULL,
    hash       TEXT    NOT NULL
);
"""

# Version 3: the copies of lineage fields (step and dataset fingerprints, code version, seed), which no
# reader used, are dropped; the ``lineage`` JSON column holds them. A new registry creates the table so
# (MODEL_VERSIONS): DROP COLUMN needs SQLite 3.35, which Python builds on older systems lack.
MODEL_VERSIONS = """CREATE TABLE model_versions (
    model                TEXT    NOT NULL,
    version              INTEGER NOT NULL,
    created_at           TEXT    NOT NULL,
    artifact             TEXT    NOT NULL,
    spec_hash            TEXT    NOT NULL,
    lineage              TEXT    NOT NULL DEFAULT '{}',
    metrics              TEXT    NOT NULL DEFAULT '{}',
    gate                 TEXT,
    status               TEXT    NOT NULL,
    PRIMARY KEY (model, version),
    UNIQUE (model, artifact)
)"""
UNCOPIED_LINEAGE = """
ALTER TABLE model_versions DROP COLUMN step_fingerprints;
ALTER TABLE model_versions DROP COLUMN dataset_fingerprints;
ALTER TABLE model_versions DROP COLUMN code_version;
ALTER TABLE model_versions DROP COLUMN seed;
"""

TRIGGERS = {
    "model_versions_immutable": """CREATE TRIGGER model_versions_immutable
BEFORE UPDATE OF model, version, created_at, artifact, spec_hash, lineage, metrics, gate ON model_versions
BEGIN
    SELECT RAISE(ABORT, 'model versions are immutable: only their status changes');
END""",
    "model_versions_no_delete": """CREATE TRIGGER model_versions_no_delete BEFORE DELETE ON model_versions
BEGIN
    SELECT RAISE(ABORT, 'model versions cannot be deleted: the audit log refers to them');
END""",
    "audit_log_no_update": """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be updated');
END""",
    "audit_log_no_delete": """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END""",
}


def create_schema(conn: sqlite3.Connection, now: str) -> None:
    """Every table, index and trigger of the current version, in a new (empty) database."""
    tables = [MODEL_VERSIONS if s.startswith("CREATE TABLE model_versions") else s for s in statements(TABLES)]
    for statement in tables + statements(CHAIN):
        conn.execute(statement)
    for sql in TRIGGERS.values():
        conn.execute(sql)
    conn.execute("INSERT INTO audit_head (singleton, last_id, hash) VALUES (1, 0, ?)", (GENESIS_HASH,))
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, now))


def upgrade_from_1(conn: sqlite3.Connection, now: str) -> None:
    """Version 1 -> 2 inside the caller's write transaction: add the chain and hash existing entries.

    The update trigger is lifted only inside this one transaction.
    """
    for statement in statements(CHAIN):
        conn.execute(statement)
    conn.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
    previous, last_id = GENESIS_HASH, 0
    for row in conn.execute(
        "SELECT id, at, actor, action, model, version, alias, from_version, reason, details, event_key"
        " FROM audit_log ORDER BY id"
    ).fetchall():
        digest = entry_hash(previous, row)
        conn.execute("UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?", (previous, digest, row[0]))
        previous, last_id = digest, row[0]
    conn.execute(TRIGGERS["audit_log_no_update"])
    conn.execute("INSERT INTO audit_head (singleton, last_id, hash) VALUES (1, ?, ?)", (last_id, previous))
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (2, ?)", (now,))


def upgrade_from_2(conn: sqlite3.Connection, now: str) -> None:
    """Version 2 -> 3 inside the caller's write transaction: drop the lineage copies, re-create the
    immutability trigger (which names them) without them. The values stay in each version's ``lineage``."""
    if sqlite3.sqlite_version_info < (3, 35):
        raise sqlite3.NotSupportedError(f"upgrading it to schema version {SCHEMA_VERSION} needs SQLite 3.35 or newer "
                                        f"(DROP COLUMN); this Python has SQLite {sqlite3.sqlite_version}")
    conn.execute("DROP TRIGGER IF EXISTS model_versions_immutable")
    for statement in statements(UNCOPIED_LINEAGE):
        conn.execute(statement)
    conn.execute(TRIGGERS["model_versions_immutable"])
    conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (3, ?)", (now,))


def statements(script: str) -> list[str]:
    """Split a schema script into statements."""
    return [part.strip() for part in script.split(";") if part.strip()]
