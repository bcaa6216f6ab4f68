"""SQL schema of the embedded SQLite registry, created idempotently and versioned."""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

# Portable SQL where possible (PostgreSQL later): JSON is stored as TEXT, times as ISO-8601 UTC.
TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_versions (
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
CREATE TABLE IF NOT EXISTS aliases (
    model       TEXT    NOT NULL,
    alias       TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE TABLE IF NOT EXISTS audit_log (
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
CREATE INDEX IF NOT EXISTS audit_log_model ON audit_log (model, id);
CREATE TRIGGER IF NOT EXISTS model_versions_immutable
BEFORE UPDATE OF model, version, created_at, artifact, spec_hash, step_fingerprints, dataset_fingerprints,
    code_version, seed, lineage, metrics, gate ON model_versions
BEGIN
    SELECT RAISE(ABORT, 'model versions are immutable: only their status changes');
END;
CREATE TRIGGER IF NOT EXISTS model_versions_no_delete BEFORE DELETE ON model_versions
BEGIN
    SELECT RAISE(ABORT, 'model versions cannot be deleted: the audit log refers to them');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be updated');
END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END;
"""


def ensure_schema(conn: sqlite3.Connection, now: str) -> int:
    """Create the tables if missing (idempotent) and return the database's schema version.

    Runs in one IMMEDIATE transaction so concurrent first openers do not race.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _statements(TABLES):
            conn.execute(statement)
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        if row[0] is None:
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (SCHEMA_VERSION, now))
            version = SCHEMA_VERSION
        else:
            version = int(row[0])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return version


def _statements(script: str) -> list[str]:
    """Split the schema script into statements, keeping trigger bodies whole."""
    statements, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current)
        if line.rstrip().endswith(";") and sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
