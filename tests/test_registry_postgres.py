"""PostgreSQL-only registry behaviour: migrations, refusals, tamper evidence in the database, lost connections."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHALLENGER, CHAMPION, RegistryError
from loopc.runtime.registry.postgres import redacted
from loopc.runtime.registry.postgres_schema import MIGRATIONS, SCHEMA_VERSION

MODEL = "churn"


def _filled(url: str) -> None:
    with open_registry(url) as reg:
        for number in (1, 2, 3):
            reg.register_version(MODEL, artifact=f"a{number}", spec_hash="s", lineage={}, metrics={}, gate=None,
                                 actor="ci")
        reg.promote(MODEL, 1, actor="ci", reason="first")
        reg.promote(MODEL, 2, actor="ci", reason="better", expect_current=1)
        reg.set_alias(MODEL, CHALLENGER, 3, actor="ci", reason="gate passed")


def _cli(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["registry", *args])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def test_migrate_creates_then_reports_current(postgres_url, capsys):
    code, lines = _cli(capsys, "migrate", "--registry", postgres_url)
    assert code == 0 and lines == [f"{postgres_url}: schema version {SCHEMA_VERSION} (created)"]
    code, lines = _cli(capsys, "migrate", "--registry", postgres_url)
    assert code == 0 and lines[0].endswith("(already current)")
    with psycopg.connect(postgres_url) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]


def test_migrate_brings_an_older_schema_forward(postgres_url, capsys):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 'then')")
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.schema == 1 and "schema version 1" in reg.verify()[0]
    code, lines = _cli(capsys, "migrate", "--registry", postgres_url)
    assert code == 0 and lines[0].endswith(f"schema version {SCHEMA_VERSION} (migrated from version 1)")
    _filled(postgres_url)
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.verify() == []


LINEAGE = {"step_fingerprints": {"train.m": "f1"}, "dataset_fingerprints": {"d": "fp"}, "code_version": "0.1",
           "seed": 7, "run_id": "r1"}


def test_version_2_is_read_as_is_and_its_lineage_copies_dropped_by_migrate(postgres_url, capsys):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for number in (1, 2):
            for statement in MIGRATIONS[number]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (%s, 'then')", (number,))
        conn.execute("INSERT INTO model_versions (model, version, created_at, artifact, spec_hash, step_fingerprints,"
                     " dataset_fingerprints, code_version, seed, lineage, status) VALUES ('m', 1, 't', 'a1', 's',"
                     " '{}', '{}', '0.1', 7, %s, 'passed')", (json.dumps(LINEAGE),))
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.version("m", 1).lineage == LINEAGE and "schema version 2 (this loopc's is 3);" in reg.verify()[0]
    code, lines = _cli(capsys, "migrate", "--registry", postgres_url)
    assert code == 0 and lines[0].endswith(f"schema version {SCHEMA_VERSION} (migrated from version 2)")
    with open_registry(postgres_url) as reg:
        assert reg.version("m", 1).lineage == LINEAGE and reg.verify() == []
        assert reg.register_version("m", artifact="a2", spec_hash="s", lineage=LINEAGE, metrics={}, gate=None,
                                    actor="t").seed == 7
    with psycopg.connect(postgres_url) as conn:
        columns = [r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name"
                                              " = 'model_versions' ORDER BY ordinal_position")]
        assert columns == ["model", "version", "created_at", "artifact", "spec_hash", "lineage", "metrics", "gate",
                           "status"]
        with pytest.raises(psycopg.errors.RaiseException, match="model versions are immutable"):
            conn.execute("UPDATE model_versions SET lineage = '{}' WHERE version = 1")


def test_an_empty_or_foreign_database_is_refused_without_changes(postgres_url):
    with pytest.raises(RegistryError, match="no loopc registry in .*loopc registry migrate"):
        open_registry(postgres_url, read_only=True)
    with pytest.raises(RegistryError, match="no loopc registry"):
        open_registry(postgres_url, create=False)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit_log (what text)")
    with pytest.raises(RegistryError, match="tables named audit_log but no loopc schema version"):
        open_registry(postgres_url)
    with psycopg.connect(postgres_url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    assert tables == ["audit_log"]


def test_read_only_opens_cannot_write(postgres_url):
    _filled(postgres_url)
    with open_registry(postgres_url, read_only=True) as reg:
        with pytest.raises(RegistryError, match="opened read-only"):
            reg.promote(MODEL, 3, actor="x", reason="y")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            reg._conn.execute("INSERT INTO schema_version VALUES (99, 'x')")
        assert reg.aliases(MODEL) == {"archived": 1, CHALLENGER: 3, CHAMPION: 2}


def test_verify_names_an_edit_and_a_dropped_trigger(postgres_url, capsys):
    _filled(postgres_url)
    assert _cli(capsys, "verify", "--registry", postgres_url)[0] == 0
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER audit_log_no_update ON audit_log")
        conn.execute("UPDATE audit_log SET actor = 'mallory' WHERE id = 5")
        conn.execute("ALTER TABLE model_versions DISABLE TRIGGER model_versions_no_delete")
    code, lines = _cli(capsys, "verify", "--registry", postgres_url)
    assert code == 1
    assert lines == [
        f"{postgres_url}: trigger model_versions_no_delete differs from loopc's definition (replaced by hand?)",
        f"{postgres_url}: trigger audit_log_no_update is missing (dropped?): its table is no longer protected",
        f"{postgres_url}: audit entry 5 (set_alias {MODEL}): its contents do not match its hash (edited by hand?)",
    ]


def test_connection_errors_name_the_url_without_its_password(postgres_url):
    parts = urlsplit(postgres_url)
    closed = urlunsplit(parts._replace(netloc=f"{parts.username}:s3cret@127.0.0.1:1"))
    with pytest.raises(RegistryError) as refused:
        open_registry(closed)
    assert f"{parts.username}:***@127.0.0.1:1" in str(refused.value) and "s3cret" not in str(refused.value)
    assert redacted("postgresql://u:p@h:5/db?sslmode=require") == "postgresql://u:***@h:5/db?sslmode=require"
    assert redacted("postgresql://h/db") == "postgresql://h/db"


def test_a_connection_lost_mid_run_fails_the_write_naming_the_url_and_changes_nothing(postgres_url):
    _filled(postgres_url)
    with open_registry(postgres_url) as reg:
        backend = reg._conn.info.backend_pid
        with psycopg.connect(postgres_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        with pytest.raises(RegistryError, match=f"registry {postgres_url}: .*was not applied"):
            reg.promote(MODEL, 3, actor="ci", reason="lost")
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.aliases(MODEL)[CHAMPION] == 2 and reg.verify() == []


@pytest.mark.parametrize("point", ["promote.after_alias", "promote.after_archive", "promote.before_commit",
                                   "register.after_insert"])
def test_a_writer_killed_inside_a_transaction_leaves_nothing_half_done(postgres_url, point):
    _filled(postgres_url)
    code = (f"from loopc.runtime.registry.connect import open_registry\n"
            f"reg = open_registry({postgres_url!r})\n"
            f"reg.register_version('churn', artifact='a9', spec_hash='s', lineage={{}}, metrics={{}}, gate=None,"
            f" actor='ci')\n"
            f"reg.promote('churn', 3, actor='ci', reason='go', expect_current=2)\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "LOOPC_TEST_KILL_AT": point},
                          capture_output=True, text=True, check=False)
    assert done.returncode == -9, done.stderr
    with open_registry(postgres_url, read_only=True) as reg:
        assert reg.verify() == []
        versions = len(reg.versions(MODEL))
        assert versions == (3 if point.startswith("register") else 4)
        assert reg.aliases(MODEL) == {"archived": 1, CHALLENGER: 3, CHAMPION: 2}
