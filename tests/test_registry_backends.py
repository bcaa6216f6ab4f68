"""Registry on every backend (SQLite and PostgreSQL): schema, numbering, alias transactions, append-only audit, rollback."""

from __future__ import annotations

import sqlite3

import pytest
from registry_support import DB_ERRORS, param, raw_connection

from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import (
    NO_VERSION,
    AliasConflict,
    Registry,
    RegistryError,
)
from loopc.runtime.registry.schema import SCHEMA_VERSION

LINEAGE = {
    "step_fingerprints": {"train.m": "f1"},
    "dataset_fingerprints": {"customers": "d1"},
    "code_version": "0.1.0",
    "seed": 7,
}


def _register(reg: Registry, model: str = "churn", artifact: str = "a1", **extra):
    values = dict(spec_hash="s1", lineage=LINEAGE, metrics={"auc": 0.8}, gate=None, actor="ci")
    values.update(extra)
    return reg.register_version(model, artifact=artifact, **values)


@pytest.fixture
def reg(registry_url):
    with open_registry(registry_url) as registry:
        yield registry


def test_schema_is_idempotent_and_versioned(tmp_path):
    path = tmp_path / "r.db"
    open_registry(path).close()
    open_registry(str(path)).close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert {"model_versions", "aliases", "audit_log", "audit_log_no_update", "audit_log_no_delete"} <= tables


def test_newer_schema_is_refused(registry_url):
    open_registry(registry_url).close()
    with raw_connection(registry_url) as conn:
        conn.execute(f"INSERT INTO schema_version VALUES ({param(registry_url)}, 'later')", (SCHEMA_VERSION + 1,))
        for read_only in (False, True):
            with pytest.raises(RegistryError, match="newer than this loopc"):
                open_registry(registry_url, read_only=read_only)


def test_urls(tmp_path):
    with pytest.raises(RegistryError, match="scheme 'mysql' is not supported; use postgresql://"):
        open_registry("mysql://db/loopc")
    with pytest.raises(RegistryError, match="names no file"):
        open_registry("sqlite:///")
    with pytest.raises(RegistryError, match="write sqlite:///relative.db"):
        open_registry("sqlite://registry.db")
    with open_registry(f"sqlite:///{tmp_path}/abs.db") as reg:
        assert reg.path == tmp_path / "abs.db"


def test_versions_number_per_model_and_keep_lineage(reg):
    first = _register(reg, artifact="a1")
    second = _register(reg, artifact="a2", gate={"status": "rejected", "passed": False})
    other = _register(reg, model="demand", artifact="a1")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.status == "registered" and second.status == "rejected"
    assert second.gate == {"status": "rejected", "passed": False}
    assert first.dataset_fingerprints == {"customers": "d1"} and first.seed == 7
    assert first.step_fingerprints == {"train.m": "f1"} and first.code_version == "0.1.0"
    assert reg.version("churn", 2) == second
    assert [v.version for v in reg.versions("churn")] == [1, 2]
    assert reg.models() == ["churn", "demand"]
    assert reg.versions("nothing") == []


def test_same_artifact_registers_nothing_new(reg):
    first = _register(reg, artifact="a1")
    assert reg.find_by_artifact("churn", "a1") == first
    assert reg.find_by_artifact("churn", "zz") is None
    assert _register(reg, artifact="a1", metrics={"auc": 0.1}) == first
    assert len(reg.versions("churn")) == 1
    assert [e.action for e in reg.audit_log("churn")] == ["register"]


def test_unknown_model_and_version_errors(reg):
    _register(reg)
    with pytest.raises(RegistryError, match="unknown model 'nope'.*known models: churn"):
        reg.version("nope", 1)
    with pytest.raises(RegistryError, match="model 'churn' has no version 5; versions are 1..1"):
        reg.version("churn", 5)
    for beyond in (2**63, 10**23, -(2**63) - 1):  # past the version column's range: no version, not a driver error
        with pytest.raises(RegistryError, match=f"model 'churn' has no version {beyond}; versions are 1..1"):
            reg.version("churn", beyond)
    with pytest.raises(RegistryError, match="unknown model 'nope'"):
        reg.version("nope", 10**23)
    with pytest.raises(RegistryError, match=f"no version {10**23}"):
        reg.set_alias("churn", "champion", 10**23, actor="me", reason="x")
    with pytest.raises(RegistryError, match="no version 9"):
        reg.set_alias("churn", "champion", 9, actor="me", reason="x")
    with pytest.raises(RegistryError, match="needs an actor"):
        reg.record_event("override", "churn", 1, "", "why")


def test_champion_moves_archive_previous_in_one_audited_step(reg):
    for i in range(3):
        _register(reg, artifact=f"a{i}")
    reg.set_alias("churn", "champion", 1, actor="alice", reason="first", expect_current=NO_VERSION)
    reg.set_alias("churn", "champion", 2, actor="bob", reason="better", expect_current=1)
    reg.set_alias("churn", "challenger", 3, actor="ci", reason="gate passed")
    assert reg.aliases("churn") == {"archived": 1, "challenger": 3, "champion": 2}
    assert reg.get_alias("churn", "champion").status == "champion"
    assert reg.version("churn", 1).status == "archived"
    assert reg.get_alias("churn", "shadow") is None
    moves = [(e.action, e.alias, e.version, e.from_version, e.actor) for e in reg.audit_log("churn")[3:]]
    assert moves == [
        ("set_alias", "champion", 1, None, "alice"),
        ("set_alias", "champion", 2, 1, "bob"),
        ("set_alias", "archived", 1, None, "bob"),
        ("set_alias", "challenger", 3, None, "ci"),
    ]


def test_expect_current_conflict_changes_nothing(reg):
    for i in range(3):
        _register(reg, artifact=f"a{i}")
    reg.set_alias("churn", "champion", 1, actor="a", reason="r")
    before = reg.audit_log()
    with pytest.raises(AliasConflict, match="points at v1, not no version as expected"):
        reg.set_alias("churn", "champion", 2, actor="b", reason="r", expect_current=NO_VERSION)
    with pytest.raises(AliasConflict, match="points at v1, not v3"):
        reg.set_alias("churn", "champion", 2, actor="b", reason="r", expect_current=3)
    assert reg.audit_log() == before and reg.aliases("churn") == {"champion": 1}


def test_audit_log_is_append_only(reg, registry_url):
    _register(reg)
    entry = reg.record_event("gate_override", "churn", 1, "alice", "business need", {"ticket": "OPS-1"})
    assert (entry.action, entry.details, entry.reason) == ("gate_override", {"ticket": "OPS-1"}, "business need")
    with raw_connection(registry_url) as conn:
        with pytest.raises(DB_ERRORS, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'mallory'")
        with pytest.raises(DB_ERRORS, match="append-only"):
            conn.execute("DELETE FROM audit_log")
        if not registry_url.startswith("sqlite:"):
            with pytest.raises(DB_ERRORS, match="append-only"):
                conn.execute("TRUNCATE audit_log")
    assert [e.actor for e in reg.audit_log()] == ["ci", "alice"]


def test_versions_are_immutable_but_status(reg, registry_url):
    _register(reg)
    with raw_connection(registry_url) as conn:
        with pytest.raises(DB_ERRORS, match="immutable"):
            conn.execute("UPDATE model_versions SET metrics = '{}'")
        with pytest.raises(DB_ERRORS, match="immutable"):
            conn.execute("UPDATE model_versions SET version = 9")
        with pytest.raises(DB_ERRORS, match="cannot be deleted"):
            conn.execute("DELETE FROM model_versions")
    reg.set_alias("churn", "champion", 1, actor="ci", reason="first")
    assert reg.version("churn", 1).status == "champion" and reg.version("churn", 1).metrics == {"auc": 0.8}


def test_rollback_walks_back_through_promotions(reg):
    for i in range(3):
        _register(reg, artifact=f"a{i}")
    with pytest.raises(RegistryError, match="no champion to roll back"):
        reg.rollback("churn", actor="ops", reason="bad")
    for number in (1, 2, 3):
        reg.set_alias("churn", "champion", number, actor="ci", reason="promote")
    assert reg.rollback("churn", actor="ops", reason="v3 misbehaves").version == 2
    assert reg.aliases("churn")["archived"] == 3
    assert reg.rollback("churn", actor="ops", reason="v2 too").version == 1
    with pytest.raises(RegistryError, match="no earlier champion"):
        reg.rollback("churn", actor="ops", reason="again")
    last = reg.audit_log("churn")[-2]
    assert (last.action, last.version, last.from_version, last.reason) == ("rollback", 1, 2, "v2 too")


def test_remove_alias_is_audited(reg):
    _register(reg)
    reg.set_alias("churn", "shadow", 1, actor="ci", reason="start shadow")
    reg.remove_alias("churn", "shadow", actor="ci", reason="shadow done")
    reg.remove_alias("churn", "shadow", actor="ci", reason="again: no-op")
    assert reg.aliases("churn") == {}
    assert [e.action for e in reg.audit_log()] == ["register", "set_alias", "remove_alias"]
