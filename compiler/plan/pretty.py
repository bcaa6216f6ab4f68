"""``json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)``, byte for byte, about twice as fast.

With ``indent`` the standard library falls back to its pure-Python generator encoder; every compiled step
document and plan manifest goes through it. This encoder appends to one list recursively and uses the
same C string escaper and the same float and int spellings.
"""

from __future__ import annotations

from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

_INF = float("inf")


@dataclass(frozen=True)
class Written:
    """A value ``pretty_json`` wrote before, at the top level: placed as is, each line indented to where it stands."""

    text: str


def pretty_json(value: Any) -> str:
    """The text ``json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)`` returns."""
    out: list[str] = []
    _encode(value, out, "\n")
    return "".join(out)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float(key)
    if key is True or key is False or key is None:
        return {True: "true", False: "false", None: "null"}[key]
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


def _encode(value: Any, out: list[str], newline: str) -> None:
    if isinstance(value, str):
        out.append(encode_basestring(value))
    elif value is None or value is True or value is False:
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_float(value))
    elif isinstance(value, (list, tuple)):
        _encode_items(value, out, newline)
    elif isinstance(value, dict):
        _encode_dict(value, out, newline)
    elif isinstance(value, Written):
        out.append(value.text.replace("\n", newline))
    else:
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def _encode_items(items: list | tuple, out: list[str], newline: str) -> None:
    if not items:
        out.append("[]")
        return
    inner = newline + "  "
    separator = "," + inner
    out.append("[" + inner)
    for index, item in enumerate(items):
        lead = separator if index else ""
        if type(item) is str:  # the common scalars inline: one piece per item, no call
            out.append(lead + encode_basestring(item))
        else:
            out.append(lead)
            _encode(item, out, inner)
    out.append(newline + "]")


def _encode_dict(mapping: dict, out: list[str], newline: str) -> None:
    if not mapping:
        out.append("{}")
        return
    inner = newline + "  "
    separator = "," + inner
    out.append("{" + inner)
    for index, (key, item) in enumerate(sorted(mapping.items())):
        name = (separator if index else "") + encode_basestring(key if type(key) is str else _key(key)) + ": "
        if type(item) is str:  # the common scalars inline: one piece per item, no call
            out.append(name + encode_basestring(item))
        elif item is None or item is True or item is False:
            out.append(name + ("null" if item is None else "true" if item else "false"))
        else:
            out.append(name)
            _encode(item, out, inner)
    out.append(newline + "}")
