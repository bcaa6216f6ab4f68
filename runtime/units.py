"""Durations and memory sizes as the spec writes them (``90s``, ``1d12h``, ``4G``); no dependencies."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMGT]i?B?|[KMGT])?$", re.IGNORECASE)


def parse_duration(text: str | int) -> int:
    """Seconds in a duration such as ``90s``, ``15m``, ``2h``, ``1d12h`` (a bare int is seconds)."""
    if isinstance(text, int):
        return text
    match = _DURATION.match(str(text).strip())
    if not match or not any(match.groups()):
        raise ValueError(f"'{text}' is not a duration; write e.g. '30m', '2h', '1d12h' or '45s'")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def parse_memory_mb(text: str | int) -> int:
    """Mebibytes in a memory size such as ``512M``, ``4G``, ``16GiB`` (a bare int is MiB)."""
    if isinstance(text, int):
        return text
    match = _MEMORY.match(str(text).strip())
    if not match:
        raise ValueError(f"'{text}' is not a memory size; write e.g. '512M', '4G' or '16GiB'")
    value, unit = float(match.group(1)), (match.group(2) or "M")[0].upper()
    return int(value * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[unit])
