"""The audit log's hash chain and the consistency checks of ``verify``, independent of the backend.

Entry hash = sha256(previous entry's hash + "\\n" + canonical JSON of the entry's stored fields);
the first entry follows GENESIS_HASH. A backend supplies rows; these functions say what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from loopc.runtime.registry.interface import CHALLENGER, CHAMPION

GENESIS_HASH = "0" * 64
# The stored fields of an audit entry, in hashing order.
ENTRY_FIELDS = ("id", "at", "actor", "action", "model", "version", "alias", "from_version", "reason",
                "details", "event_key")


def entry_hash(prev_hash: str, fields: Sequence[Any]) -> str:
    """sha256 over the previous hash and the canonical JSON array of ``fields`` (ENTRY_FIELDS order)."""
    if len(fields) != len(ENTRY_FIELDS):
        raise ValueError(f"an audit entry has {len(ENTRY_FIELDS)} fields, got {len(fields)}")
    canonical = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev_hash}\n{canonical}".encode("utf-8")).hexdigest()


def chain_problems(rows: Iterable[Mapping[str, Any]], head: tuple[int, str] | None) -> list[str]:
    """Gaps, edits and broken links in the audit chain; ``head`` is the stored (last id, last hash)."""
    problems: list[str] = []
    previous, last_id = GENESIS_HASH, 0
    for row in rows:
        entry_id = int(row["id"])
        label = f"audit entry {entry_id} ({row['action']} {row['model']})"
        if entry_id != last_id + 1:
            problems.append(f"audit entries {_span(last_id + 1, entry_id - 1)} are missing (deleted by hand?)")
        elif row["prev_hash"] != previous:
            problems.append(f"{label}: does not follow entry {last_id} in the hash chain (entries rewritten?)")
        if entry_hash(row["prev_hash"], [row[name] for name in ENTRY_FIELDS]) != row["hash"]:
            problems.append(f"{label}: its contents do not match its hash (edited by hand?)")
        previous, last_id = row["hash"], entry_id
    if head is None:
        problems.append("the audit head (last entry id and hash) is missing")
    elif head[0] > last_id:
        problems.append(f"audit entries {_span(last_id + 1, head[0])} are missing at the end (deleted by hand?)")
    elif head != (last_id, previous):
        problems.append(f"the audit head ({head[0]}) does not match the last audit entry ({last_id})")
    return problems


def _span(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}..{last}"


def trigger_problems(found: Mapping[str, str], expected: Mapping[str, str]) -> list[str]:
    """Protective triggers that are missing or differ from loopc's definition."""
    problems = []
    for name, sql in expected.items():
        if name not in found:
            problems.append(f"trigger {name} is missing (dropped?): its table is no longer protected")
        elif _normal(found[name]) != _normal(sql):
            problems.append(f"trigger {name} differs from loopc's definition (replaced by hand?)")
    return problems


def _normal(sql: str) -> str:
    return re.sub(r"\s+", " ", sql.replace("IF NOT EXISTS ", "")).strip()


def alias_problems(rows: Iterable[Mapping[str, Any]], aliases: Mapping[tuple[str, str], int],
                   statuses: Mapping[tuple[str, int], str]) -> list[str]:
    """Aliases that differ from a replay of the audit log, champion statuses, a challenger left on the champion."""
    replayed: dict[tuple[str, str], int] = {}
    for row in rows:
        if row["alias"] is None:
            continue
        key = (row["model"], row["alias"])
        if row["action"] == "remove_alias":
            replayed.pop(key, None)
        else:
            replayed[key] = row["version"]
    problems = []
    for model, alias in sorted(set(replayed) | set(aliases)):
        stored, logged = aliases.get((model, alias)), replayed.get((model, alias))
        if stored != logged:
            problems.append(f"alias {alias} of model {model} points at {_v(stored)}, the audit log says {_v(logged)}")
    for model in sorted({model for model, _ in statuses}):
        champion = aliases.get((model, CHAMPION))
        marked = sorted(number for (m, number), status in statuses.items() if m == model and status == CHAMPION)
        if marked != ([champion] if champion is not None else []):
            problems.append(f"model {model}: versions with status champion {marked or 'none'} "
                            f"but the champion alias points at {_v(champion)}")
        if champion is not None and aliases.get((model, CHALLENGER)) == champion:
            problems.append(f"model {model}: the challenger alias still points at champion v{champion} "
                            "(an interrupted promotion; resume the run or promote again)")
    return problems


def _v(version: int | None) -> str:
    return "nothing" if version is None else f"v{version}"
