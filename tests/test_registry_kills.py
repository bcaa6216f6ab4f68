"""kill -9 at every point between a registry transaction's statements: all or nothing, verify clean, resume repairs.

The registry dies where ``LOOPC_TEST_KILL_AT`` names a point (runtime/faults.py), so every
kill lands exactly there; each test asserts the process really died by SIGKILL.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHALLENGER, CHAMPION

MODEL = "churn"
LOOPC = [sys.executable, "-m", "loopc.compiler.cli.main"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """v1 champion, v2 challenger."""
    with open_registry(_db(tmp_path)) as reg:
        for number in (1, 2):
            reg.register_version(MODEL, artifact=f"a{number}", spec_hash="s", lineage={}, metrics={}, gate=None,
                                 actor="ci")
        reg.promote(MODEL, 1, actor="ci", reason="first")
        reg.set_alias(MODEL, CHALLENGER, 2, actor="ci", reason="gate passed")
    return tmp_path


def _db(root: Path) -> Path:
    return root / ".loopc" / "registry.db"


def _killed_at(point: str, command: list[str]) -> None:
    done = subprocess.run(command, env={**os.environ, "LOOPC_TEST_KILL_AT": point}, capture_output=True,
                          text=True, check=False)
    assert done.returncode == -9, f"not killed at {point}: exit {done.returncode}, {done.stderr}"


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", "from loopc.runtime.registry.connect import open_registry\n" + code]


def _state(root: Path) -> tuple[dict[str, int], list[tuple[str, str | None, int | None]]]:
    with open_registry(_db(root), read_only=True) as reg:
        assert reg.verify() == []
        return reg.aliases(MODEL), [(e.action, e.alias, e.version) for e in reg.audit_log(MODEL)]


def _verify_cli(root: Path, capsys) -> None:
    assert main(["registry", "verify", "--root", str(root)]) == 0, capsys.readouterr().out
    capsys.readouterr()


PROMOTE_POINTS = ["promote.after_event", "promote.after_alias", "promote.after_archive", "promote.after_clear",
                  "promote.before_commit"]


@pytest.mark.parametrize("point", [*PROMOTE_POINTS, "promote.after_commit"])
def test_manual_promote_killed_anywhere_is_all_or_nothing(root, capsys, point):
    before = _state(root)
    promote = [*LOOPC, "registry", "promote", MODEL, "2", "--reason", "sign-off", "--actor", "ana",
               "--root", str(root)]
    _killed_at(point, promote)
    _verify_cli(root, capsys)
    aliases, log = _state(root)
    if point == "promote.after_commit":
        assert aliases == {"archived": 1, CHAMPION: 2}
        assert log[len(before[1]):] == [("manual_promotion", None, 2), ("set_alias", CHAMPION, 2),
                                        ("set_alias", "archived", 1), ("remove_alias", CHALLENGER, None)]
    else:
        assert (aliases, log) == before  # no audit entry for a promotion that did not happen
    assert subprocess.run(promote, capture_output=True, check=False).returncode == 0  # the person retries
    aliases, log = _state(root)
    assert aliases == {"archived": 1, CHAMPION: 2}
    assert [action for action, _, _ in log].count("manual_promotion") == 1


@pytest.mark.parametrize("point", ["rollback.after_alias", "rollback.after_archive", "rollback.before_commit"])
def test_rollback_killed_anywhere_changes_nothing(root, capsys, point):
    assert main(["registry", "promote", MODEL, "2", "--reason", "r", "--root", str(root)]) == 0
    before = _state(root)
    _killed_at(point, [*LOOPC, "registry", "rollback", MODEL, "--reason", "bad", "--root", str(root)])
    _verify_cli(root, capsys)
    assert _state(root) == before


@pytest.mark.parametrize("point", ["register.after_insert", "register.before_commit", "register.after_commit"])
def test_register_killed_anywhere_then_repeated_registers_once(root, point):
    code = (f"reg = open_registry({str(_db(root))!r})\n"
            f"reg.register_version({MODEL!r}, artifact='a3', spec_hash='s', lineage={{}}, metrics={{}}, gate=None,"
            " actor='run r9')\n")
    _killed_at(point, _python(code))
    with open_registry(_db(root), read_only=True) as reg:
        assert reg.verify() == []
        assert len(reg.versions(MODEL)) == (3 if point.endswith("after_commit") else 2)
    subprocess.run(_python(code), check=True)
    with open_registry(_db(root), read_only=True) as reg:
        assert reg.verify() == [] and [v.version for v in reg.versions(MODEL)] == [1, 2, 3]
        assert [e.action for e in reg.audit_log(MODEL)].count("register") == 3


@pytest.mark.parametrize("point", ["event.after_insert", "event.before_commit", "event.after_commit"])
def test_a_shadow_event_killed_anywhere_then_resumed_is_recorded_once(root, point):
    code = (f"reg = open_registry({str(_db(root))!r})\n"
            f"reg.record_event('shadow', {MODEL!r}, 2, 'loopc run r9', 'agreement 0.9', {{'agreement': 0.9}},"
            " event_key='r9/shadow.churn')\n")
    _killed_at(point, _python(code))
    subprocess.run(_python(code), check=True)
    subprocess.run(_python(code), check=True)
    _, log = _state(root)
    assert [action for action, _, _ in log].count("shadow") == 1


ALIAS_CHANGES = {"set_alias": f"reg.set_alias({MODEL!r}, 'canary', 1, actor='ana', reason='try')\n",
                 "remove_alias": f"reg.remove_alias({MODEL!r}, {CHALLENGER!r}, actor='ana', reason='done')\n"}


@pytest.mark.parametrize("point", ["set_alias.after_alias", "set_alias.before_commit", "remove_alias.before_commit"])
def test_an_alias_change_killed_before_its_commit_changes_nothing(root, capsys, point):
    before = _state(root)
    _killed_at(point, _python(f"reg = open_registry({str(_db(root))!r})\n" + ALIAS_CHANGES[point.split(".")[0]]))
    _verify_cli(root, capsys)
    assert _state(root) == before


def test_concurrent_promotions_leave_one_champion_and_a_verifiable_chain(root, capsys):
    """Sixteen people promote sixteen versions at once through the CLI."""
    writers = 16
    with open_registry(_db(root)) as reg:
        for number in range(3, 3 + writers):
            reg.register_version(MODEL, artifact=f"a{number}", spec_hash="s", lineage={}, metrics={}, gate=None,
                                 actor="ci")
    procs = [subprocess.Popen([*LOOPC, "registry", "promote", MODEL, str(n), "--reason", "race", "--actor", f"p{n}",
                               "--root", str(root)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in range(3, 3 + writers)]
    results = [(proc.wait(), proc.stderr.read()) for proc in procs]
    for proc in procs:
        proc.stdout.close()
        proc.stderr.close()
    won = [code for code, _ in results if code == 0]
    lost = [err for code, err in results if code != 0]
    assert won and all("another promotion won" in err and "internal error" not in err for err in lost)
    _verify_cli(root, capsys)
    with open_registry(_db(root), read_only=True) as reg:
        champion = reg.get_alias(MODEL, CHAMPION).version
        assert [v.version for v in reg.versions(MODEL) if v.status == CHAMPION] == [champion]
        log = reg.audit_log(MODEL)
        moves = [e for e in log if e.action == "set_alias" and e.alias == CHAMPION]
        assert len(moves) == 1 + len(won) and moves[-1].version == champion
        for before, after in zip(moves, moves[1:]):
            assert after.from_version == before.version  # nobody replaced a champion it did not see
        assert len([e for e in log if e.action == "manual_promotion"]) == len(won)
