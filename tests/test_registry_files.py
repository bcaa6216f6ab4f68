"""A registry file that is missing, empty, damaged, foreign, older or newer: refused (or upgraded) without loss."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.chain import GENESIS_HASH
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION, RegistryError
from loopc.runtime.registry.schema import CHAIN, SCHEMA_VERSION, TABLES, TRIGGERS, statements


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()


def _newer(path: Path) -> None:
    """A registry written by a later loopc (schema version + 1) that dropped one of our triggers."""
    open_registry(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    conn.execute("DROP TRIGGER audit_log_no_delete")
    conn.commit()
    conn.close()


BAD_FILES = {
    "empty": (lambda p: p.write_bytes(b""), "is an empty file (0 bytes)"),
    "not sqlite": (lambda p: p.write_bytes(b"PK\x03\x04 a zip, not a registry" * 50), "is not a SQLite database"),
    "truncated header": (lambda p: p.write_bytes(b"SQLite format"), "is not a SQLite database"),
    "foreign sqlite": (_foreign, "is a SQLite database but not a loopc registry"),
    "newer": (_newer, f"has schema version {SCHEMA_VERSION + 1}, newer than this loopc"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("read_only", [True, False])
def test_bad_registry_files_are_refused_and_left_byte_identical(tmp_path, case, read_only):
    path = tmp_path / "registry.db"
    make, message = BAD_FILES[case]
    make(path)
    before = _digest(path)
    with pytest.raises(RegistryError, match=re.escape(message)) as raised:
        open_registry(path, read_only=read_only)
    assert str(path) in str(raised.value)
    assert _digest(path) == before
    assert {p.name for p in tmp_path.iterdir()} <= {"registry.db", "registry.db-wal", "registry.db-shm"}
    wal = tmp_path / "registry.db-wal"
    assert not wal.exists() or wal.stat().st_size == 0  # nothing waiting to be written into it either


def test_an_older_loopc_adds_no_trigger_to_a_newer_registry(tmp_path):
    path = tmp_path / "registry.db"
    _newer(path)
    with pytest.raises(RegistryError, match="newer than this loopc"):
        open_registry(path)
    names = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert "audit_log_no_delete" not in names and "audit_log_no_update" in names


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("action", [["list"], ["show", "m", "1"], ["verify"], ["promote", "m", "1", "--reason", "r"],
                                    ["rollback", "m", "--reason", "r"]])
def test_cli_refuses_bad_files_with_one_clear_line(tmp_path, capsys, case, action):
    path = tmp_path / ".loopc" / "registry.db"
    path.parent.mkdir()
    BAD_FILES[case][0](path)
    before = _digest(path)
    assert main(["registry", *action, "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and BAD_FILES[case][1] in err
    assert "internal error" not in err and "Traceback" not in err and err.count("\n") == 1
    assert _digest(path) == before


@pytest.mark.parametrize("action", [["list"], ["verify"], ["show", "m", "1"], ["promote", "m", "1", "--reason", "r"]])
def test_cli_never_creates_a_registry(tmp_path, capsys, action):
    assert main(["registry", *action, "--root", str(tmp_path)]) == 1
    assert "no registry at" in capsys.readouterr().err
    assert not (tmp_path / ".loopc").exists()


def test_inventory_reports_a_damaged_registry_by_path(tmp_path, capsys):
    project = tmp_path / "proj"
    example = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"
    shutil.copytree(example, project, ignore=shutil.ignore_patterns("data", ".loopc", "__pycache__"))
    (project / ".loopc").mkdir()
    (project / ".loopc" / "registry.db").write_bytes(b"")
    assert main(["inventory", str(project)]) == 1
    err = capsys.readouterr().err
    assert "empty file" in err and str(project / ".loopc" / "registry.db") in err and "internal error" not in err


def test_registry_errors_after_opening_name_the_registry(tmp_path, capsys):
    with open_registry(tmp_path / ".loopc" / "registry.db") as reg:
        reg.register_version("m", artifact="a", spec_hash="s", lineage={}, metrics={}, gate=None, actor="t")
    assert main(["registry", "show", "m", "7", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no version 7" in err and str(tmp_path / ".loopc" / "registry.db") in err


def test_a_writer_killed_while_creating_leaves_no_registry_behind(tmp_path):
    path = tmp_path / "registry.db"
    code = f"from loopc.runtime.registry.connect import open_registry; open_registry({str(path)!r})"
    done = subprocess.run([sys.executable, "-c", code], env=_env(kill="create.before_link"), check=False)
    assert done.returncode == -9
    assert not path.exists()
    with open_registry(path) as reg:
        assert reg.verify() == [] and reg.models() == []


def _env(kill: str) -> dict[str, str]:
    import os

    return {**os.environ, "LOOPC_TEST_KILL_AT": kill}


V1_TRIGGERS = [sql.replace("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1) for sql in TRIGGERS.values()]


def _version_1(path: Path) -> None:
    """A registry as loopc's schema version 1 wrote it, with a champion and three audit entries."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for statement in statements(TABLES) + V1_TRIGGERS:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 'then')")
    for number in (1, 2):
        conn.execute("INSERT INTO model_versions (model, version, created_at, artifact, spec_hash, status)"
                     " VALUES ('m', ?, 't', ?, 's', 'passed')", (number, f"a{number}"))
        conn.execute("INSERT INTO audit_log (at, actor, action, model, version) VALUES ('t', 'ci', 'register', 'm', ?)",
                     (number,))
    conn.execute("INSERT INTO aliases VALUES ('m', 'champion', 1, 't')")
    conn.execute("UPDATE model_versions SET status = 'champion' WHERE version = 1")
    conn.execute("INSERT INTO audit_log (at, actor, action, model, version, alias) VALUES ('t', 'ci', 'set_alias', 'm',"
                 " 1, 'champion')")
    conn.close()


def test_version_1_is_read_as_is_and_upgraded_by_the_first_writer(tmp_path):
    path = tmp_path / "registry.db"
    _version_1(path)
    with open_registry(path, read_only=True) as reader:
        assert reader.get_alias("m", CHAMPION).version == 1 and len(reader.audit_log()) == 3
        assert "schema version 1" in reader.verify()[0]
    before = _digest(path)
    with open_registry(path, read_only=True):
        pass
    assert _digest(path) == before
    with open_registry(path) as writer:
        assert writer.verify() == []
        writer.promote("m", 2, actor="ana", reason="better", expect_current=1)
        assert writer.verify() == []
        assert [e.action for e in writer.audit_log()] == ["register", "register", "set_alias", "set_alias", "set_alias"]
    versions = sqlite3.connect(path).execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(1,), (2,), (SCHEMA_VERSION,)]


V2_IMMUTABLE = """CREATE TRIGGER model_versions_immutable
BEFORE UPDATE OF model, version, created_at, artifact, spec_hash, step_fingerprints, dataset_fingerprints,
    code_version, seed, lineage, metrics, gate ON model_versions
BEGIN
    SELECT RAISE(ABORT, 'model versions are immutable: only their status changes');
END"""
LINEAGE = {"step_fingerprints": {"train.m": "f1"}, "dataset_fingerprints": {"d": "fp"}, "code_version": "0.1",
           "seed": 7, "run_id": "r1"}


def _version_2(path: Path) -> None:
    """A registry as schema version 2 wrote it: four lineage fields copied into columns beside ``lineage``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    others = [sql for name, sql in TRIGGERS.items() if name != "model_versions_immutable"]
    for statement in statements(TABLES) + statements(CHAIN) + [V2_IMMUTABLE] + others:
        conn.execute(statement)
    conn.execute("INSERT INTO audit_head VALUES (1, 0, ?)", (GENESIS_HASH,))
    conn.execute("INSERT INTO schema_version VALUES (2, 'then')")
    conn.execute("INSERT INTO model_versions (model, version, created_at, artifact, spec_hash, step_fingerprints,"
                 " dataset_fingerprints, code_version, seed, lineage, status) VALUES ('m', 1, 't', 'a1', 's',"
                 " '{\"train.m\":\"f1\"}', '{\"d\":\"fp\"}', '0.1', 7, ?, 'passed')", (json.dumps(LINEAGE),))
    conn.close()


def _columns(path: Path) -> list[str]:
    return [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(model_versions)")]


def test_version_2_is_read_as_is_and_its_lineage_copies_dropped_by_the_first_writer(tmp_path):
    path, fresh = tmp_path / "registry.db", tmp_path / "fresh.db"
    _version_2(path)
    before = _digest(path)
    with open_registry(path, read_only=True) as reader:
        assert reader.version("m", 1).lineage == LINEAGE and reader.version("m", 1).seed == 7
        assert reader.verify() == [f"registry {path} has schema version 2 (this loopc's is 3); the next loopc "
                                   "command that writes to it upgrades it (or `loopc registry migrate`)"]
    assert _digest(path) == before
    with open_registry(path) as writer:
        assert writer.version("m", 1).lineage == LINEAGE and writer.verify() == []
        writer.register_version("m", artifact="a2", spec_hash="s", lineage=LINEAGE, metrics={}, gate=None, actor="t")
        assert [v.dataset_fingerprints for v in writer.versions("m")] == [{"d": "fp"}, {"d": "fp"}]
    open_registry(fresh).close()
    assert _columns(path) == _columns(fresh) == ["model", "version", "created_at", "artifact", "spec_hash",
                                                 "lineage", "metrics", "gate", "status"]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall() == [(2,), (3,)]
    with pytest.raises(sqlite3.IntegrityError, match="model versions are immutable"):
        conn.execute("UPDATE model_versions SET lineage = '{}' WHERE version = 1")


def test_a_new_registry_is_created_without_drop_column_which_sqlite_before_3_35_lacks():
    from loopc.runtime.registry.schema import create_schema

    conn, executed = sqlite3.connect(":memory:"), []
    conn.set_trace_callback(executed.append)
    create_schema(conn, "now")
    assert executed and not [s for s in executed if "DROP" in s.upper()]
    assert [row[1] for row in conn.execute("PRAGMA table_info(model_versions)")] == [
        "model", "version", "created_at", "artifact", "spec_hash", "lineage", "metrics", "gate", "status"]


def test_upgrading_version_2_on_an_sqlite_without_drop_column_says_so_and_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "registry.db"
    _version_2(path)
    before = _digest(path)
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    with pytest.raises(RegistryError, match=r"schema version 3 needs SQLite 3\.35 or newer \(DROP COLUMN\)"):
        open_registry(path).close()
    assert _digest(path) == before
    with open_registry(path, read_only=True) as reader:
        assert reader.version("m", 1).lineage == LINEAGE
