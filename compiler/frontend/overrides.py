"""Command-line overrides in Hydra's syntax: key=value, +key=value, ++key=value, ~key, a=1,2 sweeps."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.frontend.load import parse_spec

OVERRIDE_FILE = "<override>"
_SYNTAX = re.compile(r"^(?P<prefix>~|\+\+|\+)?(?P<key>/?[A-Za-z_][\w./\-]*)(?:@(?P<package>[\w.]*))?"
                     r"(?:=(?P<value>.*))?$", re.S)
_OPEN, _CLOSE = "[{(", "]})"


@dataclass(frozen=True)
class Override:
    """One parsed override; ``values`` has several entries for a sweep (``lr=1e-3,1e-2``)."""

    text: str
    index: int
    prefix: str  # "", "+", "++" or "~"
    key: str
    package: str | None
    values: tuple[Any, ...]
    value_texts: tuple[str, ...]

    @property
    def has_value(self) -> bool:
        return bool(self.value_texts)

    @property
    def value(self) -> Any:
        return self.values[0] if self.values else None

    @property
    def group_key(self) -> str:
        """The key as written, with ``@package`` (how a sweep point names it)."""
        return self.key if self.package is None else f"{self.key}@{self.package}"


def override_error(override: Override | None, text: str, index: int, code: str, message: str,
                   hint: str | None = None) -> SpecError:
    """A SpecError located at an override: file ``<override>``, line = its 1-based position."""
    source = override.text if override else text
    hint_text = f"override '{source}'" + (f"; {hint}" if hint else "")
    return SpecError(OVERRIDE_FILE, index + 1, 1, code, override.key if override else "", message, hint_text)


def parse_overrides(texts: tuple[str, ...] | list[str]) -> list[Override]:
    """Parse every override; all malformed ones are reported together."""
    parsed, errors = [], []
    for index, text in enumerate(texts):
        try:
            parsed.append(parse_override(text, index))
        except SpecErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise SpecErrors(errors)
    return parsed


def parse_override(text: str, index: int = 0) -> Override:
    """Parse one override such as ``model.optimizer.lr=1e-3,1e-2`` or ``~monitors``."""
    match = _SYNTAX.match(text.strip())
    if not match or (match["value"] is None and match["prefix"] != "~"):
        hint = "write key=value, +key=value, ++key=value, ~key or group=option"
        raise SpecErrors([override_error(None, text, index, "LPC404", f"malformed override '{text}'", hint)])
    value = match["value"]
    texts = tuple(_split_sweep(value)) if value is not None else ()
    values = tuple(_parse_value(part, text, index) for part in texts)
    return Override(text, index, match["prefix"] or "", match["key"], match["package"], values, texts)


def _split_sweep(value: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``1,2`` sweeps, ``[1,2]`` is one list."""
    parts, depth, quote, start = [], 0, "", 0
    for position, char in enumerate(value):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(value[start:position].strip())
            start = position + 1
    parts.append(value[start:].strip())
    return parts


def _parse_value(text: str, override: str, index: int) -> Any:
    """The YAML value of one override; text that is not YAML stays text; tags and alias bombs are errors."""
    if text == "":
        return ""
    try:
        return parse_spec(text, OVERRIDE_FILE, require_mapping=False).tree
    except SpecErrors as exc:
        codes = {e.code for e in exc.errors}
        if codes == {"LPC002"}:
            return None
        if codes == {"LPC001"}:
            return text
        message = f"override value {text!r}: {exc.errors[0].message}"
        raise SpecErrors([override_error(None, override, index, "LPC404", message, exc.errors[0].hint)]) from None


def expand_sweeps(overrides: list[Override]) -> list[tuple[list[Override], dict[str, str]]]:
    """One list of single-valued overrides per point of the cartesian product of the sweeps."""
    choices = []
    for override in overrides:
        if len(override.values) <= 1:
            choices.append([(override, None)])
            continue
        singles = [
            (Override(f"{override.prefix}{override.group_key}={text}", override.index, override.prefix,
                      override.key, override.package, (value,), (text,)), text)
            for value, text in zip(override.values, override.value_texts)
        ]
        choices.append(singles)
    points = []
    for combination in itertools.product(*choices):
        point = {o.group_key: text for o, text in combination if text is not None}
        points.append(([o for o, _ in combination], point))
    return points
