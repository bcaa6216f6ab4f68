"""The text spellings a bool column reads: validate's casting parses them, the spec's label check asks for them.
Imports nothing (validating a spec never imports numpy)."""

from __future__ import annotations

BOOLEAN_TEXT = {"true": True, "false": False, "1": True, "0": False, "t": True, "f": False, "yes": True, "no": False}


def bool_text(value: str) -> bool | None:
    """What ``value`` means as a bool, as text is parsed into a bool column (None: no bool spelling)."""
    return BOOLEAN_TEXT.get(value.strip().lower())
