"""SQL schema of the PostgreSQL registry as numbered migrations (same versions as SQLite's schema).

``MIGRATIONS[n]`` brings a database from version n-1 to n; ``migrate`` applies the missing ones in one
transaction under an advisory lock, so concurrent workers migrate once. The protective triggers
raise on any UPDATE or DELETE of the audit log (and TRUNCATE), on changing a model version other than
its status, and on deleting model versions.
"""

from __future__ import annotations

from loopc.runtime.registry.chain import GENESIS_HASH

SCHEMA_VERSION = 3
MIGRATION_LOCK = 7_351_062_417  # pg_advisory_xact_lock key: "loopc registry migration"

_V1 = """
CREATE TABLE schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE model_versions (
    model                TEXT    NOT NULL,
    version              BIGINT  NOT NULL,
    created_at           TEXT    NOT NULL,
    artifact             TEXT    NOT NULL,
    spec_hash            TEXT    NOT NULL,
    step_fingerprints    TEXT    NOT NULL DEFAULT '{}',
    dataset_fingerprints TEXT    NOT NULL DEFAULT '{}',
    code_version         TEXT,
    seed                 BIGINT,
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
    version     BIGINT  NOT NULL,
    updated_at  TEXT    NOT NULL,
    PRIMARY KEY (model, alias),
    FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
);
CREATE TABLE audit_log (
    id            BIGINT  PRIMARY KEY,
    at            TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    model         TEXT    NOT NULL,
    version       BIGINT,
    alias         TEXT,
    from_version  BIGINT,
    reason        TEXT    NOT NULL DEFAULT '',
    details       TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_model ON audit_log (model, id);
"""

_V2 = f"""
ALTER TABLE audit_log ADD COLUMN event_key TEXT;
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_log ADD COLUMN hash TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX audit_log_event_key ON audit_log (event_key);
CREATE TABLE audit_head (
    singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),
    last_id    BIGINT  NOT NULL,
    hash       TEXT    NOT NULL
);
INSERT INTO audit_head (singleton, last_id, hash) VALUES (1, 0, '{GENESIS_HASH}');
"""

# Version 3: the copies of lineage fields, which no reader used, are dropped (``lineage`` holds them).
_V3 = """
ALTER TABLE model_versions DROP COLUMN step_fingerprints, DROP COLUMN dataset_fingerprints,
    DROP COLUMN code_version, DROP COLUMN seed
"""

# name -> (table, event clause, PL/pgSQL body of its function loopc_<name>()).
TRIGGERS = {
    "model_versions_immutable": (
        "model_versions", "BEFORE UPDATE",
        "BEGIN IF (to_jsonb(NEW) - 'status') IS DISTINCT FROM (to_jsonb(OLD) - 'status') THEN "
        "RAISE EXCEPTION 'model versions are immutable: only their status changes'; END IF; RETURN NEW; END",
    ),
    "model_versions_no_delete": (
        "model_versions", "BEFORE DELETE",
        "BEGIN RAISE EXCEPTION 'model versions cannot be deleted: the audit log refers to them'; END",
    ),
    "audit_log_no_update": (
        "audit_log", "BEFORE UPDATE",
        "BEGIN RAISE EXCEPTION 'audit_log is append-only: entries cannot be updated'; END",
    ),
    "audit_log_no_delete": (
        "audit_log", "BEFORE DELETE",
        "BEGIN RAISE EXCEPTION 'audit_log is append-only: entries cannot be deleted'; END",
    ),
    "audit_log_no_truncate": (
        "audit_log", "BEFORE TRUNCATE",
        "BEGIN RAISE EXCEPTION 'audit_log is append-only: it cannot be truncated'; END",
    ),
}


def trigger_statements() -> list[str]:
    """The functions and triggers of TRIGGERS (row-level, except TRUNCATE, which is per statement)."""
    out = []
    for name, (table, event, body) in TRIGGERS.items():
        level = "STATEMENT" if event.endswith("TRUNCATE") else "ROW"
        out.append(f"CREATE OR REPLACE FUNCTION loopc_{name}() RETURNS trigger LANGUAGE plpgsql AS $body${body}$body$")
        out.append(f"CREATE TRIGGER {name} {event} ON {table} FOR EACH {level} EXECUTE FUNCTION loopc_{name}()")
    return out


MIGRATIONS: dict[int, list[str]] = {
    1: [part.strip() for part in _V1.split(";") if part.strip()],
    2: [part.strip() for part in _V2.split(";") if part.strip()] + trigger_statements(),
    3: [_V3.strip()],
}
