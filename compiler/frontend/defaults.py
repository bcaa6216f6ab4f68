"""Parse a config's Hydra ``defaults`` list into entries (group, option, package, flags, position)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, RawDocument
from loopc.compiler.frontend.overrides import Override

_FLAGS = ("optional", "override")


@dataclass(frozen=True)
class DefaultEntry:
    """One defaults-list entry: ``_self_``, ``name`` or ``[optional] [override] group[@package]: option``."""

    group: str | None  # full group path ("model", "model/optimizer"); None for _self_ and plain configs
    option: Any  # option name, list of names, or None (nothing chosen)
    package: str | None
    optional: bool
    override: bool
    is_self: bool
    position: Position
    appended: Override | None = None  # set for +group=option from the command line
    base: str = ""  # folder of the config that holds this entry
    relative_group: str | None = None  # the group as written (packages are relative to it)

    @property
    def key(self) -> str:
        """How overrides name this entry: ``group`` or ``group@package``."""
        group = self.group or ""
        return group if self.package is None else f"{group}@{self.package}"

    @staticmethod
    def self_entry() -> DefaultEntry:
        return DefaultEntry(None, None, None, False, False, True, ("", 0, 0))


def parse_defaults(document: RawDocument, base: str) -> tuple[list[DefaultEntry], list[SpecError]]:
    """The entries of ``document``'s defaults list, and every malformed entry as an LPC401 error."""
    raw = document.tree.get("defaults")
    if raw is None:
        return [], []
    where = document.positions.get(("defaults",), (document.file, 1, 1))
    if not isinstance(raw, list):
        return [], [SpecError(*where, "LPC401", "defaults", "'defaults' must be a list",
                              "write '- group: option' items, e.g. '- model: logistic'")]
    entries, errors = [], []
    for index, item in enumerate(raw):
        position = document.positions.get(("defaults", index), where)
        try:
            entries.append(_parse_entry(item, base, position))
        except ValueError as exc:
            errors.append(SpecError(*position, "LPC401", f"defaults.{index}", str(exc),
                                    "write '- group: option', '- group@package: option' or '- _self_'"))
    if sum(e.is_self for e in entries) > 1:
        errors.append(SpecError(*where, "LPC401", "defaults", "'_self_' appears more than once", None))
    return entries, errors


def _parse_entry(item: Any, base: str, position: Position) -> DefaultEntry:
    if isinstance(item, str):
        if item == "_self_":
            return DefaultEntry(None, None, None, False, False, True, position, base=base)
        return DefaultEntry(None, item, None, False, False, False, position, base=base)
    if not isinstance(item, dict) or len(item) != 1:
        raise ValueError("a defaults entry is '_self_', a config name or a one-key mapping 'group: option'")
    (head, option), = item.items()
    words = str(head).split()
    flags = set(words[:-1])
    if not words or not flags <= set(_FLAGS):
        raise ValueError(f"cannot read defaults entry '{head}'; only 'optional' and 'override' may prefix a group")
    group, _, package = words[-1].partition("@")
    if option is not None and not isinstance(option, (str, int, float, bool, list)):
        raise ValueError(f"the option of '{group}' must be a config name, a list of names or null")
    option = [str(o) for o in option] if isinstance(option, list) else None if option is None else str(option)
    full = group[1:] if group.startswith("/") else "/".join(p for p in (base, group) if p)
    return DefaultEntry(full, option, package if "@" in words[-1] else None, "optional" in flags,
                        "override" in flags, False, position, base=base, relative_group=group.lstrip("/"))
