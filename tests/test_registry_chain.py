"""The audit log is tamper-evident: hand edits of the SQLite file are named by `loopc registry verify`."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.chain import GENESIS_HASH, entry_hash
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHALLENGER, CHAMPION


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three versions, v2 champion (v1 archived), v3 challenger, a shadow event: eight chained audit entries."""
    with open_registry(tmp_path / ".loopc" / "registry.db") as reg:
        for number in (1, 2, 3):
            reg.register_version("churn", artifact=f"a{number}", spec_hash="s", lineage={}, metrics={}, gate=None,
                                 actor="ci")
        reg.promote("churn", 1, actor="ci", reason="first")
        reg.promote("churn", 2, actor="ci", reason="better", expect_current=1)
        reg.set_alias("churn", CHALLENGER, 3, actor="ci", reason="gate passed")
        reg.record_event("shadow", "churn", 3, "ci", "agreement 0.9", {"agreement": 0.9})
        assert reg.verify() == []
    return tmp_path


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".loopc" / "registry.db", isolation_level=None)


def _verify(root: Path, capsys) -> tuple[int, list[str]]:
    code = main(["registry", "verify", "--root", str(root)])
    return code, capsys.readouterr().out.splitlines()


def test_a_clean_registry_verifies(root, capsys):
    code, lines = _verify(root, capsys)
    assert code == 0 and len(lines) == 1 and "ok (8 audit entries chained" in lines[0]


def test_entries_chain_by_hash_from_genesis(root):
    rows = _db(root).execute("SELECT id, at, actor, action, model, version, alias, from_version, reason, details,"
                             " event_key, prev_hash, hash FROM audit_log ORDER BY id").fetchall()
    previous = GENESIS_HASH
    for row in rows:
        assert row[11] == previous and row[12] == entry_hash(previous, row[:11])
        previous = row[12]
    assert _db(root).execute("SELECT last_id, hash FROM audit_head").fetchone() == (len(rows), previous)


def test_an_edited_entry_and_the_dropped_trigger_are_named(root, capsys):
    conn = _db(root)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 5")
    code, lines = _verify(root, capsys)
    assert code == 1
    assert lines == [
        f"{root / '.loopc' / 'registry.db'}: trigger audit_log_no_update is missing (dropped?): "
        "its table is no longer protected",
        f"{root / '.loopc' / 'registry.db'}: audit entry 5 (set_alias churn): its contents do not match its hash "
        "(edited by hand?)",
    ]


def test_a_rehashed_edit_breaks_the_next_link(root, capsys):
    conn = _db(root)
    conn.execute("DROP TRIGGER audit_log_no_update")
    row = conn.execute("SELECT id, at, actor, action, model, version, alias, from_version, reason, details, event_key,"
                       " prev_hash FROM audit_log WHERE id = 4").fetchone()
    forged = (*row[:2], "mallory", *row[3:11])
    conn.execute("UPDATE audit_log SET actor = 'mallory', hash = ? WHERE id = 4", (entry_hash(row[11], forged),))
    code, lines = _verify(root, capsys)
    assert code == 1
    assert any("audit entry 5 (set_alias churn): does not follow entry 4" in line for line in lines)


def test_a_deleted_entry_is_named(root, capsys):
    conn = _db(root)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id = 6")
    code, lines = _verify(root, capsys)
    assert code == 1
    assert any("audit entries 6 are missing (deleted by hand?)" in line for line in lines)
    assert any("trigger audit_log_no_delete is missing" in line for line in lines)


def test_deleting_the_last_entries_is_named(root, capsys):
    conn = _db(root)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("DELETE FROM audit_log WHERE id >= 7")
    conn.execute(TRIGGER_NO_DELETE)
    code, lines = _verify(root, capsys)
    assert code == 1
    assert [line.split(": ", 1)[1] for line in lines] == [
        "audit entries 7..8 are missing at the end (deleted by hand?)",
        "alias challenger of model churn points at v3, the audit log says nothing",
    ]


TRIGGER_NO_DELETE = """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: entries cannot be deleted');
END"""


def test_a_replaced_trigger_is_named(root, capsys):
    conn = _db(root)
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.execute("CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT 1; END")
    code, lines = _verify(root, capsys)
    assert code == 1 and len(lines) == 1 and "trigger audit_log_no_delete differs" in lines[0]


@pytest.mark.parametrize("edit, problem", [
    ("UPDATE aliases SET version = 3 WHERE alias = 'champion'", "alias champion of model churn points at v3, "
                                                               "the audit log says v2"),
    ("DELETE FROM aliases WHERE alias = 'archived'", "alias archived of model churn points at nothing, "
                                                     "the audit log says v1"),
    ("UPDATE model_versions SET status = 'champion' WHERE version = 1",
     "model churn: versions with status champion [1, 2] but the champion alias points at v2"),
])
def test_aliases_and_statuses_are_checked_against_the_log(root, capsys, edit, problem):
    _db(root).execute(edit)
    code, lines = _verify(root, capsys)
    assert code == 1 and any(line.endswith(problem) for line in lines), lines


def test_a_challenger_left_on_the_champion_is_named(root, capsys):
    with open_registry(root / ".loopc" / "registry.db") as reg:
        reg.set_alias("churn", CHAMPION, 3, actor="ci", reason="by alias, not promote")
    code, lines = _verify(root, capsys)
    assert code == 1 and len(lines) == 1 and "challenger alias still points at champion v3" in lines[0]
    with open_registry(root / ".loopc" / "registry.db") as reg:
        assert reg.promote("churn", 3, actor="ci", reason="resume", expect_current=3) is None
        assert reg.verify() == [] and CHALLENGER not in reg.aliases("churn")


def test_events_recorded_once_by_key(root):
    with open_registry(root / ".loopc" / "registry.db") as reg:
        first = reg.record_event("shadow", "churn", 3, "run r1", "agree", {"a": 1}, event_key="r1/shadow.churn")
        again = reg.record_event("shadow", "churn", 3, "run r1", "agree", {"a": 1}, event_key="r1/shadow.churn")
        other = reg.record_event("shadow", "churn", 3, "run r2", "agree", {"a": 1}, event_key="r2/shadow.churn")
        assert again == first and other.id == first.id + 1
        assert [e.action for e in reg.audit_log()].count("shadow") == 3
        assert reg.verify() == []
