"""Eight processes promote at once, on SQLite and on PostgreSQL: exactly one champion, a complete verified audit log."""

from __future__ import annotations

import multiprocessing

from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION, AliasConflict

WRITERS = 8


def _setup(path: str) -> None:
    with open_registry(path) as reg:
        for i in range(WRITERS + 1):
            reg.register_version(
                "churn", artifact=f"a{i}", spec_hash="s", lineage={}, metrics={}, gate=None, actor="ci"
            )
        reg.set_alias("churn", CHAMPION, 1, actor="ci", reason="initial")


def _promote_once(args: tuple[str, int, object]) -> str:
    """Try once to replace champion v1 by ``version``; 'won' or 'conflict'."""
    path, version, barrier = args
    with open_registry(path) as reg:
        barrier.wait()
        try:
            reg.set_alias("churn", CHAMPION, version, actor=f"p{version}", reason="race", expect_current=1)
        except AliasConflict:
            return "conflict"
        return "won"


def _promote_until_done(args: tuple[str, int, object]) -> int:
    """Re-read and retry until ``version`` became champion; return the number of conflicts."""
    path, version, barrier = args
    conflicts = 0
    with open_registry(path) as reg:
        barrier.wait()
        while True:
            current = reg.get_alias("churn", CHAMPION).version
            try:
                reg.set_alias("churn", CHAMPION, version, actor=f"p{version}", reason="retry", expect_current=current)
                return conflicts
            except AliasConflict:
                conflicts += 1


def _run(target, path: str) -> list:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(WRITERS)
        with ctx.Pool(WRITERS) as pool:
            return pool.map(target, [(path, v, barrier) for v in range(2, WRITERS + 2)])


def test_one_winner_from_the_same_starting_champion(registry_url):
    path = registry_url
    _setup(path)
    results = _run(_promote_once, path)
    assert sorted(results) == ["conflict"] * (WRITERS - 1) + ["won"]
    winner = 2 + results.index("won")
    with open_registry(path) as reg:
        assert reg.aliases("churn") == {"archived": 1, CHAMPION: winner}
        champions = [v.version for v in reg.versions("churn") if v.status == CHAMPION]
        assert champions == [winner]
        moves = [(e.alias, e.version, e.from_version) for e in reg.audit_log("churn") if e.action == "set_alias"]
        assert moves == [(CHAMPION, 1, None), (CHAMPION, winner, 1), ("archived", 1, None)]
        assert reg.verify() == []


def test_retrying_promoters_leave_a_consistent_chain(registry_url):
    path = registry_url
    _setup(path)
    _run(_promote_until_done, path)
    with open_registry(path) as reg:
        log = reg.audit_log("churn")
        chain = [e for e in log if e.action == "set_alias" and e.alias == CHAMPION]
        assert len(chain) == WRITERS + 1
        for before, after in zip(chain, chain[1:]):
            assert after.from_version == before.version  # nobody overwrote a champion it did not see
        promoted = sorted(e.version for e in chain[1:])
        assert promoted == list(range(2, WRITERS + 2))
        final = reg.get_alias("churn", CHAMPION).version
        assert final == chain[-1].version
        assert [v.version for v in reg.versions("churn") if v.status == CHAMPION] == [final]
        assert len([e for e in log if e.alias == "archived"]) == WRITERS
        assert [e.id for e in log] == sorted(e.id for e in log)
        assert reg.verify() == []
