"""Command-line overrides parsed by hydra-core's grammar: key=value, +key=value, ++key=value, ~key, a=1,2 sweeps."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from loopc.compiler.errors import SpecError, SpecErrors

OVERRIDE_FILE = "<override>"
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
    """Parse one override with hydra-core's own grammar (``model.optimizer.lr=1e-3,1e-2``, ``~monitors``)."""
    parsed = _hydra_parse(text, index)
    prefix = _PREFIXES[parsed.type.name]
    if not parsed.key_or_group:
        raise SpecErrors([override_error(None, text, index, "LPC404", f"malformed override '{text}': no key",
                                         "write key=value, +key=value, ++key=value, ~key or group=option")])
    if parsed.is_hydra_override():
        raise SpecErrors([override_error(None, text, index, "LPC412", "Hydra's own settings (hydra.*, hydra/...) "
                                         "are not part of a loopc spec", "remove this override")])
    if parsed.value_type is None:
        return Override(text, index, prefix, parsed.key_or_group, parsed.package, (), ())
    kind = parsed.value_type.name
    if kind == "ELEMENT":
        value = parsed.value()
        return Override(text, index, prefix, parsed.key_or_group, parsed.package, (value,),
                        (_element_text(parsed._value),))
    if kind != "SIMPLE_CHOICE_SWEEP":
        form = _SWEEP_FORMS.get(kind, kind.lower())
        message = f"the Hydra sweep form {form} is not supported by loopc"
        raise SpecErrors([override_error(None, text, index, "LPC412", message,
                                         "write the values as a simple sweep: key=a,b,c")])
    elements = list(parsed._value.list)
    values = tuple(parsed._convert_value(e) for e in elements)
    raw = _split_sweep(parsed.get_value_string())
    texts = tuple(raw) if len(raw) == len(elements) else tuple(_element_text(e) for e in elements)
    return Override(text, index, prefix, parsed.key_or_group, parsed.package, values, texts)


_PREFIXES = {"CHANGE": "", "ADD": "+", "FORCE_ADD": "++", "DEL": "~"}
_SWEEP_FORMS = {"CHOICE_SWEEP": "choice(...)", "RANGE_SWEEP": "range(...)", "INTERVAL_SWEEP": "interval(...)",
                "GLOB_CHOICE_SWEEP": "glob(...)"}


def _hydra_parse(text: str, index: int) -> Any:
    """hydra-core's parse of ``text`` (imported on first use: it loads ANTLR); parse errors are LPC404."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(text)
    except (HydraException, RecursionError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "nested too deeply"
        message = f"malformed override '{text}': {reason}"
        hint = "write key=value, +key=value, ++key=value, ~key or group=option (Hydra's override grammar)"
        raise SpecErrors([override_error(None, text, index, "LPC404", message, hint)]) from None


def _element_text(element: Any) -> str:
    """An element as Hydra writes it back on a command line."""
    from hydra.core.override_parser.types import Override as HydraOverride

    return HydraOverride._get_value_element_as_str(element)


def _split_sweep(value: str) -> list[str]:
    """Split at commas outside brackets, quotes and escapes (only to label sweep points as written)."""
    parts, depth, quote, start, escaped = [], 0, "", 0, False
    for position, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
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
