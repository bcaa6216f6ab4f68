"""The registry's audit chain and consistency checks as pure functions: the entry hash against hashlib over
the documented text, every problem ``verify`` can report worded exactly, and a replay of alias moves.
"""

from __future__ import annotations

import hashlib
import time
from datetime import datetime, timedelta, timezone

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
from loopc.runtime.registry.sql import stamp

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


# ------------------------------------------------------------------ what a transaction refuses, returns and records

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
NAME_RULE = "use letters, digits, '_', '.' or '-' (at most 128)"


def test_invalid_names_are_refused_with_their_kind_and_the_rule(registry):
    from loopc.runtime.registry.interface import Event, RegistryError

    refusals = {
        f"invalid model name 'bad name': {NAME_RULE}": lambda: registry.register_version(
            "bad name", artifact="a", spec_hash="s", lineage={}, metrics={}, gate=None, actor="ci"),
        f"invalid alias '-canary': {NAME_RULE}": lambda: registry.set_alias(
            "m", "-canary", 1, actor="ci", reason="r"),
        f"invalid action 'gate passed': {NAME_RULE}": lambda: registry.promote(
            "m", 1, actor="ci", reason="r", event=Event("gate passed", "r")),
        f"invalid action '': {NAME_RULE}": lambda: registry.record_event("", "m", 1, "ci", "r"),
        f"invalid alias 7: {NAME_RULE}": lambda: registry.set_alias("m", 7, 1, actor="ci", reason="r"),
    }  # fmt: skip
    for message, refused in refusals.items():
        with pytest.raises(RegistryError) as error:
            refused()
        assert str(error.value) == message
    assert registry.aliases("m") == {} and [e.action for e in registry.audit_log("m")] == ["register", "register"]


def test_unknown_models_and_versions_are_named_with_what_the_registry_has(registry, tmp_path):
    from loopc.runtime.registry.connect import open_registry
    from loopc.runtime.registry.interface import RegistryError

    registry.register_version("n", artifact="b", spec_hash="s", lineage={}, metrics={}, gate=None, actor="ci")
    with pytest.raises(RegistryError) as error:
        registry.version("x", 1)
    assert str(error.value) == f"unknown model 'x' in registry {registry.label}; known models: m, n"
    with pytest.raises(RegistryError) as error:
        registry.version("m", 3)
    assert str(error.value) == "model 'm' has no version 3; versions are 1..2"
    with open_registry(f"sqlite:///{tmp_path}/empty.db") as empty, pytest.raises(RegistryError) as error:
        empty.version("m", 1)
    assert str(error.value) == f"unknown model 'm' in registry {empty.label}; known models: none"


def test_a_gate_without_a_status_registers_the_version_as_registered(registry):
    gated = registry.register_version("m", artifact="a3", spec_hash="s", lineage={}, metrics={},
                                      gate={"checks": []}, actor="ci")  # fmt: skip
    passed = registry.register_version("m", artifact="a4", spec_hash="s", lineage={}, metrics={},
                                       gate={"status": "passed"}, actor="ci")  # fmt: skip
    assert (gated.status, gated.gate) == ("registered", {"checks": []})
    assert (passed.status, passed.gate) == ("passed", {"status": "passed"})
    assert registry.version("m", 1).gate is None and registry.version("m", 1).status == "registered"


def test_promote_returns_the_replaced_champion_and_none_when_nothing_was_replaced(registry):
    assert registry.promote("m", 1, actor="ci", reason="first") is None
    assert registry.promote("m", 2, actor="ci", reason="better") == 1
    assert registry.promote("m", 2, actor="ci", reason="again") is None
    assert registry.aliases("m") == {CHAMPION: 2, "archived": 1}


def test_promote_checks_the_expected_champion_and_changes_nothing_on_a_conflict(registry):
    from loopc.runtime.registry.interface import AliasConflict

    before = audit(registry)
    with pytest.raises(AliasConflict) as error:
        registry.promote("m", 2, actor="ci", reason="r", expect_current=1)
    assert str(error.value) == ("alias 'champion' of model 'm' points at no version, not v1 as expected; "
                                "another promotion won, re-read and retry")  # fmt: skip
    assert registry.aliases("m") == {} and audit(registry) == before
    registry.promote("m", 1, actor="ci", reason="first")
    with pytest.raises(AliasConflict, match="points at v1, not v2 as expected"):
        registry.promote("m", 2, actor="ci", reason="r", expect_current=2)
    assert registry.promote("m", 2, actor="ci", reason="r", expect_current=1) == 1


def test_set_alias_names_the_alias_and_model_of_a_conflict(registry):
    from loopc.runtime.registry.interface import AliasConflict

    with pytest.raises(AliasConflict) as error:
        registry.set_alias("m", "canary", 2, actor="ci", reason="r", expect_current=1)
    assert str(error.value) == ("alias 'canary' of model 'm' points at no version, not v1 as expected; "
                                "another promotion won, re-read and retry")  # fmt: skip
    assert registry.aliases("m") == {}


def test_the_archived_alias_records_the_version_it_replaces(registry):
    from loopc.runtime.registry.interface import ARCHIVED

    registry.register_version("m", artifact="a3", spec_hash="s", lineage={}, metrics={}, gate=None, actor="ci")
    for number in (1, 2, 3):
        registry.promote("m", number, actor="ci", reason=f"v{number}")
    archived = [(e.version, e.from_version, e.reason) for e in registry.audit_log("m") if e.alias == ARCHIVED]
    assert archived == [(1, None, "replaced as champion by v2"), (2, 1, "replaced as champion by v3")]
    assert registry.verify() == []


def test_rollback_without_an_earlier_champion_says_what_to_do_instead(registry):
    from loopc.runtime.registry.interface import RegistryError

    with pytest.raises(RegistryError) as error:
        registry.rollback("m", actor="ci", reason="r")
    assert str(error.value) == "model 'm' has no champion to roll back; promote a version first"
    registry.promote("m", 2, actor="ci", reason="first")
    with pytest.raises(RegistryError) as error:
        registry.rollback("m", actor="ci", reason="r")
    assert str(error.value) == ("model 'm': champion v2 has no earlier champion to roll back to; "
                                "set the champion alias to a chosen version instead")  # fmt: skip


def test_an_event_about_a_version_records_it_and_refuses_an_unknown_one(registry):
    import re

    from loopc.runtime.registry.interface import RegistryError

    entry = registry.record_event("drift_checked", "m", 2, "mon", None, {"psi": 0.1})
    assert (entry.action, entry.version, entry.actor, entry.reason, entry.details) == \
        ("drift_checked", 2, "mon", "", {"psi": 0.1})
    assert re.fullmatch(STAMP, entry.at) and re.fullmatch(STAMP, registry.version("m", 2).created_at)
    assert registry.audit_log("m")[-1] == entry
    with pytest.raises(RegistryError, match="model 'm' has no version 9; versions are 1..2"):
        registry.record_event("drift_checked", "m", 9, "mon", "r")
    assert registry.record_event("note", "m", None, "mon", "r").version is None
    assert registry.verify() == []


def test_a_backend_error_of_a_read_names_the_registry_and_the_first_line_of_the_error(registry, tmp_path):
    import sqlite3

    from loopc.runtime.registry.interface import RegistryError

    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("DROP TABLE aliases")
    with pytest.raises(RegistryError) as error:
        registry.aliases("m")
    assert str(error.value) == f"registry {registry.label}: no such table: aliases"


def test_a_version_reads_back_what_was_registered(registry):
    version = registry.version("m", 2)
    assert (version.model, version.version, version.artifact, version.spec_hash, version.lineage, version.metrics,
            version.gate) == ("m", 2, "a2", "s", {"seed": 2}, {}, None)  # fmt: skip
    assert registry.find_by_artifact("m", "a1") == registry.version("m", 1)


def test_a_change_without_an_audit_head_is_refused_and_says_to_verify(registry, tmp_path):
    import sqlite3

    from loopc.runtime.registry.interface import RegistryError

    with sqlite3.connect(tmp_path / "registry.db") as conn:
        conn.execute("DELETE FROM audit_head")
    with pytest.raises(RegistryError) as error:
        registry.set_alias("m", "canary", 1, actor="ci", reason="r")
    assert str(error.value) == f"registry {registry.label}: the audit head is missing; run `loopc registry verify`"
    assert registry.aliases("m") == {}


def test_stamps_are_utc_text_whatever_the_machines_time_zone(monkeypatch):
    """Stamps from machines in different zones compare as text: each is the UTC time with a Z."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    try:
        moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-5)))
        assert stamp(moment) == "2026-01-02T08:04:05.000006Z"
    finally:
        monkeypatch.undo()
        time.tzset()
