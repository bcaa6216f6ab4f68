"""Read-only registry commands take no write lock: they work beside a writer and in a read-only folder."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION, RegistryError

MODEL = "churn_classifier"
EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"

# Holds the write lock (an uncommitted change) until its stdin closes.
HOLD_WRITE_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute("UPDATE aliases SET updated_at = 'uncommitted'")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The churn example's spec with a registry holding v1 (champion)."""
    root = tmp_path / "churn"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns("data", ".loopc", "__pycache__"))
    with open_registry(root / ".loopc" / "registry.db") as reg:
        reg.register_version(MODEL, artifact="a1", spec_hash="s", lineage={}, metrics={"auc": 0.8}, gate=None,
                             actor="ci")
        reg.promote(MODEL, 1, actor="ci", reason="first")
    return root


READ_COMMANDS = [["registry", "list"], ["registry", "show", MODEL, "1"], ["registry", "verify"]]


def _read_everything(root: Path, capsys) -> None:
    for argv in READ_COMMANDS:
        assert main([*argv, "--root", str(root)]) == 0, capsys.readouterr().err
    assert main(["inventory", str(root), "--format", "json"]) == 0, capsys.readouterr().err
    assert '"champion": 1' in capsys.readouterr().out


def test_reads_work_while_another_process_holds_the_write_lock(project, capsys):
    db = project / ".loopc" / "registry.db"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WRITE_LOCK, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(sqlite3.OperationalError, match="locked"):  # the lock is real: a writer must wait
            sqlite3.connect(db, timeout=0, isolation_level=None).execute("BEGIN IMMEDIATE")
        _read_everything(project, capsys)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
        holder.stdout.close()
    assert holder.returncode == 0


def test_a_read_only_registry_never_writes(project):
    with open_registry(project / ".loopc" / "registry.db", read_only=True) as reg:
        with pytest.raises(RegistryError, match="opened read-only; promote needs a writer"):
            reg.promote(MODEL, 1, actor="x", reason="y")
        with pytest.raises(RegistryError, match="opened read-only"):
            reg.record_event("note", MODEL, 1, "x", "y")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reg._conn.execute("DELETE FROM aliases")  # query_only: even a raw statement cannot write
        assert reg.get_alias(MODEL, CHAMPION).version == 1


@pytest.fixture
def read_only_state(project):
    """The project's .loopc folder bind-mounted read-only (root ignores file permissions)."""
    state = project / ".loopc"
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a read-only folder for root")
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(state), str(state)], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {done.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_reads_work_in_a_read_only_folder(project, read_only_state, capsys):
    with pytest.raises(OSError):
        (read_only_state / "probe").write_text("x")
    before = sorted(p.name for p in read_only_state.iterdir())
    _read_everything(project, capsys)
    assert sorted(p.name for p in read_only_state.iterdir()) == before
    capsys.readouterr()
    assert main(["registry", "promote", MODEL, "1", "--reason", "r", "--root", str(project)]) == 1  # a writer cannot
    err = capsys.readouterr().err
    assert "cannot open registry" in err and str(read_only_state / "registry.db") in err and "internal" not in err
