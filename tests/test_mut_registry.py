"""The registry's audit chain and consistency checks as pure functions: the entry hash against hashlib over
the documented text, every problem ``verify`` can report worded exactly, and a replay of alias moves.
"""

from __future__ import annotations

import hashlib

import pytest

from loopc.runtime.registry.chain import (
    ENTRY_FIELDS,
    GENESIS_HASH,
    alias_problems,
    chain_problems,
    entry_hash,
    trigger_problems,
)
from loopc.runtime.registry.interface import CHALLENGER, CHAMPION

FIELDS = [1, "2026-11-30T00:00:00Z", "zoë", "promote", "churn", 2, "champion", None, "ré-run", {"k": [1, 2]}, None]


def test_the_entry_hash_is_sha256_of_the_previous_hash_a_newline_and_compact_json_keeping_unicode():
    text = GENESIS_HASH + '\n[1,"2026-11-30T00:00:00Z","zoë","promote","churn",2,"champion",null,"ré-run",' \
        '{"k":[1,2]},null]'
    assert entry_hash(GENESIS_HASH, FIELDS) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_an_entry_with_the_wrong_number_of_fields_is_refused():
    with pytest.raises(ValueError) as error:
        entry_hash(GENESIS_HASH, FIELDS[:-1])
    assert str(error.value) == f"an audit entry has {len(ENTRY_FIELDS)} fields, got {len(ENTRY_FIELDS) - 1}"


def chain(count: int) -> list[dict]:
    rows, previous = [], GENESIS_HASH
    for number in range(1, count + 1):
        row = dict(zip(ENTRY_FIELDS, [number, "t", "a", "promote", "m", number, "champion", None, "r", {}, None]))
        row["prev_hash"], row["hash"] = previous, entry_hash(previous, [row[f] for f in ENTRY_FIELDS])
        rows.append(row)
        previous = row["hash"]
    return rows


def test_a_missing_or_stale_head_is_reported_exactly():
    rows = chain(3)
    assert chain_problems(rows, (3, rows[-1]["hash"])) == []
    assert chain_problems(rows, None) == ["the audit head (last entry id and hash) is missing"]
    assert chain_problems(rows, (2, rows[1]["hash"])) == ["the audit head (2) does not match the last audit entry (3)"]
    assert chain_problems(rows, (5, "x")) == ["audit entries 4..5 are missing at the end (deleted by hand?)"]


def test_triggers_compare_modulo_whitespace_and_if_not_exists():
    sql = "CREATE TRIGGER IF NOT EXISTS t BEFORE UPDATE ON audit\nBEGIN SELECT RAISE(ABORT, 'no'); END"
    found = "  CREATE TRIGGER t   BEFORE UPDATE ON audit BEGIN\tSELECT RAISE(ABORT, 'no'); END \n"
    assert trigger_problems({"t": found}, {"t": sql}) == []
    assert trigger_problems({"t": found.replace("ABORT", "IGNORE")}, {"t": sql}) == \
        ["trigger t differs from loopc's definition (replaced by hand?)"]
    assert trigger_problems({"t": "CREATE TRIGGER t BEFORE UPDATE ON audit BEGIN SELECT 1; END"}, {"t": sql}) != []


def move(model: str, alias: str, version: int | None, action: str = "set_alias") -> dict:
    return {"model": model, "alias": alias, "version": version, "action": action}


def test_aliases_are_replayed_from_the_log_including_removals_of_aliases_never_set():
    rows = [move("m", "staging", None, "remove_alias"), move("m", "staging", 1), move("m", "staging", 2),
            move("m", "staging", None, "remove_alias"), move("m", "canary", 3), {"model": "m", "alias": None}]
    assert alias_problems(rows, {("m", "canary"): 3}, {}) == []
    assert alias_problems(rows, {("m", "canary"): 3, ("m", "staging"): 2}, {}) == \
        ["alias staging of model m points at v2, the audit log says nothing"]


def test_champion_statuses_agree_with_the_champion_alias_or_are_reported():
    assert alias_problems([], {}, {("m", 1): "archived", ("m", 2): "candidate"}) == []
    assert alias_problems([], {}, {("m", 1): CHAMPION}) == \
        ["model m: versions with status champion [1] but the champion alias points at nothing"]
    rows = [move("m", CHAMPION, 2)]
    assert alias_problems(rows, {("m", CHAMPION): 2}, {("m", 2): "archived"}) == \
        ["model m: versions with status champion none but the champion alias points at v2"]


def test_a_challenger_left_on_the_champion_is_an_interrupted_promotion():
    rows = [move("m", CHAMPION, 2), move("m", CHALLENGER, 2)]
    assert alias_problems(rows, {("m", CHAMPION): 2, ("m", CHALLENGER): 2}, {("m", 2): CHAMPION}) == \
        ["model m: the challenger alias still points at champion v2 "
         "(an interrupted promotion; resume the run or promote again)"]


# ------------------------------------------------------------------ what a transaction writes to the audit log


def audit(registry) -> list[tuple]:
    return [(e.actor, e.action, e.model, e.version, e.alias, e.from_version, e.reason, e.details)
            for e in registry.audit_log("m")]  # fmt: skip


@pytest.fixture
def registry(tmp_path):
    from loopc.runtime.registry.connect import open_registry

    reg = open_registry(f"sqlite:///{tmp_path}/registry.db")
    for number in (1, 2):
        reg.register_version("m", artifact=f"a{number}", spec_hash="s", lineage={"seed": number}, metrics={},
                             gate=None, actor="ci")  # fmt: skip
    yield reg
    reg.close()


def test_every_change_is_audited_with_its_actor_versions_reason_and_details(registry):
    from loopc.runtime.registry.interface import ARCHIVED, Event

    registry.set_alias("m", CHALLENGER, 1, actor="ann", reason="try it")
    registry.promote("m", 1, actor="bob", reason="gate passed", event=Event("gate_passed", "auc 0.9", {"auc": 0.9}))
    registry.promote("m", 2, actor="cy", reason="better")
    registry.set_alias("m", "canary", 2, actor="dee", reason="canary")
    registry.remove_alias("m", "canary", actor="eve", reason="done")
    assert audit(registry) == [
        ("ci", "register", "m", 1, None, None, "", {"artifact": "a1"}),
        ("ci", "register", "m", 2, None, None, "", {"artifact": "a2"}),
        ("ann", "set_alias", "m", 1, CHALLENGER, None, "try it", {}),
        ("bob", "gate_passed", "m", 1, None, None, "auc 0.9", {"auc": 0.9}),
        ("bob", "set_alias", "m", 1, CHAMPION, None, "gate passed", {}),
        ("bob", "remove_alias", "m", None, CHALLENGER, 1, f"version 1 became {CHAMPION}", {}),
        ("cy", "set_alias", "m", 2, CHAMPION, 1, "better", {}),
        ("cy", "set_alias", "m", 1, ARCHIVED, None, "replaced as champion by v2", {}),
        ("dee", "set_alias", "m", 2, "canary", None, "canary", {}),
        ("eve", "remove_alias", "m", None, "canary", 2, "done", {}),
    ]
    assert registry.version("m", 1).lineage == {"seed": 1}
    assert registry.verify() == []
