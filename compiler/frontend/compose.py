"""Compose a pipeline file the way Hydra does (defaults lists, groups, overrides, sweeps), keeping positions."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loopc.compiler.errors import SpecError, SpecErrors
from loopc.compiler.frontend.apply import apply_key_overrides
from loopc.compiler.frontend.defaults import DefaultEntry, parse_defaults
from loopc.compiler.frontend.interpolate import resolve_interpolations
from loopc.compiler.frontend.load import Position, RawDocument, SpecPath, package_header, read_spec_file
from loopc.compiler.frontend.overrides import (
    Override,
    expand_sweeps,
    override_error,
    parse_overrides,
)
from loopc.compiler.frontend.selectors import expand_selectors
from loopc.compiler.frontend.tree import MergeConflict, merge_located


@dataclass
class ComposedSpec:
    """The composed tree of one pipeline (one per sweep point) and where each node was written."""

    file: str
    tree: dict[str, Any]
    positions: dict[SpecPath, Position]
    overrides: tuple[str, ...] = ()
    sweep_point: dict[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()  # every config file or group folder composition looked at (cache keys)


class ConfigRepository:
    """The directory of a pipeline file: its config groups and their options, parsed once each."""

    def __init__(self, config_dir: Path, display_dir: str):
        self.config_dir = config_dir
        self.display_dir = display_dir
        self._documents: dict[str, RawDocument | None] = {}
        self.inputs: set[str] = set()  # paths looked at, present or not: what the composed result depends on

    def display(self, relative: str) -> str:
        return relative if self.display_dir in ("", ".") else f"{self.display_dir}/{relative}"

    def is_group(self, group: str) -> bool:
        if group:
            self.inputs.add(str(self.config_dir / group))
        return bool(group) and (self.config_dir / group).is_dir()

    def groups(self) -> list[str]:
        """Top-level config groups: folders beside the pipeline file that hold YAML files."""
        return sorted(p.name for p in self.config_dir.iterdir() if p.is_dir() and any(p.glob("*.yaml")))

    def options(self, group: str) -> list[str]:
        folder = self.config_dir / group
        return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []

    def load(self, relative: str) -> RawDocument | None:
        """The parsed ``relative``.yaml, or None when it does not exist."""
        if relative not in self._documents:
            path = self.config_dir / f"{relative}.yaml"
            self.inputs.add(str(path))
            self._documents[relative] = _read_config(path, self.display(f"{relative}.yaml")) if path.is_file() else None
        return self._documents[relative]


def _read_config(path: Path, display: str) -> RawDocument:
    try:
        return read_spec_file(path, display)
    except SpecErrors as exc:
        if [e.code for e in exc.errors] == ["LPC002"]:  # an empty group file is an empty config (header kept)
            header = package_header(path.read_text(encoding="utf-8", errors="replace"))
            return RawDocument(display, {}, {(): (display, 1, 1)}, header)
        raise


def compose_spec(pipeline_file: Path | str, overrides: tuple[str, ...] | list[str] = (),
                 display: str | None = None, primary: RawDocument | None = None) -> list[ComposedSpec]:
    """Compose ``pipeline_file`` with ``overrides``: one ComposedSpec per point of the CLI sweeps."""
    path = Path(pipeline_file)
    name = display or str(pipeline_file)
    repo = ConfigRepository(path.parent, str(Path(name).parent))
    primary = primary or read_spec_file(path, name)
    composed, errors = [], []
    for singles, point in expand_sweeps(parse_overrides(tuple(overrides))):
        try:
            composed.append(_compose_one(primary, repo, singles, point))
        except SpecErrors as exc:
            errors.extend(e for e in exc.errors if e not in errors)
    if errors:
        raise SpecErrors(errors)
    return composed


@dataclass
class _Context:
    repo: ConfigRepository
    choices: dict[str, Override]  # group[@package] -> group override from the command line
    used: set[str] = field(default_factory=set)
    defaults_overrides: dict[str, DefaultEntry] = field(default_factory=dict)
    used_overrides: set[str] = field(default_factory=set)
    seen_groups: dict[str, Position] = field(default_factory=dict)
    errors: list[SpecError] = field(default_factory=list)


def _compose_one(primary: RawDocument, repo: ConfigRepository, overrides: list[Override],
                 point: dict[str, str]) -> ComposedSpec:
    group_overrides = [o for o in overrides if repo.is_group(o.key.lstrip("/")) and not isinstance(o.value, dict)]
    key_overrides = [o for o in overrides if o not in group_overrides]
    ctx = _Context(repo, {o.group_key.lstrip("/"): o for o in group_overrides if o.prefix in ("", "~")})
    ctx.errors.extend(_group_value_errors(group_overrides))
    if ctx.errors:
        raise SpecErrors(ctx.errors)
    appended = [_appended_entry(o) for o in group_overrides if o.prefix == "+"]
    parts: list[tuple[RawDocument, str, Position]] = []
    _expand(primary, "", "", True, appended, ctx, parts)
    _check_unused(ctx, group_overrides)
    tree: dict[str, Any] = {}
    positions: dict[SpecPath, Position] = {(): (primary.file, 1, 1)}
    for document, package, where in parts:
        _merge_part(tree, positions, document, package, where, ctx)
    ctx.errors.extend(apply_key_overrides(tree, positions, key_overrides))
    if not ctx.errors and (any(d.interpolates for d, _, _ in parts) or any("${" in o.text for o in overrides)):
        ctx.errors.extend(resolve_interpolations(tree, positions))
    if not ctx.errors:
        selector_errors, data_files = expand_selectors(tree, positions, repo.config_dir)
        ctx.errors.extend(selector_errors)
        repo.inputs.update(data_files)
    if ctx.errors:
        raise SpecErrors(ctx.errors)
    texts = tuple(o.text for o in overrides)
    return ComposedSpec(primary.file, tree, positions, texts, point, tuple(sorted(repo.inputs)))


def _group_value_errors(group_overrides: list[Override]) -> list[SpecError]:
    """Hydra's refusals of group overrides: ``++group=...``, a choice that is not a name or a list of names."""
    errors = []
    for override in group_overrides:
        if override.prefix == "++":
            errors.append(override_error(override, override.text, override.index, "LPC404",
                                         f"'{override.key}' is a config group: ++ does not apply to groups",
                                         f"write {override.text[2:]} to change it or +{override.text[2:]} to add it"))
        elif override.has_value and not (isinstance(override.value, str) or (
                override.prefix != "~" and isinstance(override.value, list))):
            errors.append(override_error(override, override.text, override.index, "LPC404",
                                         "a config group choice must be an option name or a list of names",
                                         f"to remove the group write ~{override.key}"))
    return errors


def _appended_entry(override: Override) -> DefaultEntry:
    where = ("<override>", override.index + 1, 1)
    group = override.key.lstrip("/")
    return DefaultEntry(group=group, option=override.value, package=override.package, optional=False,
                        override=False, is_self=False, position=where, appended=override, relative_group=group)


def _expand(document: RawDocument, base: str, package: str, is_primary: bool, appended: list[DefaultEntry],
            ctx: _Context, parts: list[tuple[RawDocument, str, Position]]) -> None:
    """Append (document, final package, where chosen) for every config in Hydra's merge order."""
    entries, errors = parse_defaults(document, base)
    ctx.errors.extend(errors)
    ctx.errors.extend(_unsupported_forms(document, entries, is_primary))
    entries = [e for e in entries if e.is_self or (e.group is not None and not _interpolated(e))]
    entries = _with_self(entries)
    if is_primary:
        entries += appended
    ctx.errors.extend(_misplaced_overrides(entries))
    for entry in entries:
        if entry.override:
            ctx.defaults_overrides.setdefault(override_key(entry, package), entry)
    for entry in entries:
        if entry.is_self:
            parts.append((document, package, document.positions.get((), (document.file, 1, 1))))
        elif not entry.override:
            _expand_entry(entry, package, ctx, parts)


def _interpolated(entry: DefaultEntry) -> bool:
    return "${" in (entry.group or "") or "${" in str(entry.option)


def _unsupported_forms(document: RawDocument, entries: list[DefaultEntry], is_primary: bool) -> list[SpecError]:
    """LPC412 for the Hydra forms outside loopc's subset that ``document`` uses."""
    errors = []
    header = document.package
    if header is not None and (is_primary or "_group_" in header or "_name_" in header):
        message = ("a '# @package' header on the pipeline file is not supported" if is_primary else
                   f"'# @package {header}': the _group_ and _name_ keywords are not supported")
        hint = "remove the header" if is_primary else "write the package out, e.g. '# @package datasets.customers'"
        errors.append(SpecError(document.file, 1, 1, "LPC412", "", message, hint))
    for entry in entries:
        if entry.is_self:
            continue
        if entry.group is None:
            errors.append(_entry_error(entry, "LPC412", f"a plain config entry ('- {entry.option}') is not supported",
                                       "choose the config as a group option: '- group: option'"))
        elif _interpolated(entry):
            errors.append(_entry_error(entry, "LPC412", "interpolation ${...} in a defaults list is not supported",
                                       "write the option name, or choose it on the command line"))
    return errors


def _misplaced_overrides(entries: list[DefaultEntry]) -> list[SpecError]:
    """Hydra requires ``override`` entries at the end of a defaults list (``_self_`` and ``+`` aside)."""
    seen = None
    for entry in entries:
        if entry.override:
            seen = entry
        elif seen is not None and not entry.is_self and entry.appended is None:
            line = entry.position[1]
            return [_entry_error(seen, "LPC409", f"'override {seen.group}' comes before the entry on line {line}",
                                 "move override entries to the end of the defaults list")]
    return []


def override_key(entry: DefaultEntry, parent_package: str) -> str:
    """How Hydra names ``entry`` in overrides: its group, plus ``@`` its final package when that differs."""
    group = entry.group or ""
    final = _final_package(entry, None, parent_package)
    return group if final == group.replace("/", ".") else f"{group}@{final or '_global_'}"


def _with_self(entries: list[DefaultEntry]) -> list[DefaultEntry]:
    """Hydra appends ``_self_`` when a defaults list does not name it."""
    return entries if any(e.is_self for e in entries) else entries + [DefaultEntry.self_entry()]


def _expand_entry(entry: DefaultEntry, parent_package: str, ctx: _Context,
                  parts: list[tuple[RawDocument, str, Position]]) -> None:
    key = override_key(entry, parent_package)
    option, where = _choose(entry, key, ctx)
    if option is None:
        return
    if entry.group is not None and key in ctx.seen_groups:
        line = ctx.seen_groups[key][1]
        message = f"config group '{entry.group}' is chosen twice (first on line {line})"
        hint = (f"drop the '+' to change the choice: {entry.appended.text.lstrip('+')}" if entry.appended
                else f"use 'override {entry.group}: {option}'")
        ctx.errors.append(_entry_error(entry, "LPC409", message, hint))
        return
    if entry.group is not None:
        ctx.seen_groups[key] = entry.position
    for name in option if isinstance(option, list) else [option]:
        relative = f"{entry.group}/{name}" if entry.group else "/".join(p for p in (entry.base, str(name)) if p)
        document = ctx.repo.load(relative)
        if document is None:
            if not entry.optional:
                ctx.errors.append(_missing_option(entry, str(name), where, ctx))
            continue
        package = _final_package(entry, document.package, parent_package)
        child_base = entry.group if entry.group else entry.base
        _expand(document, child_base, package, False, [], ctx, parts)


def _choose(entry: DefaultEntry, key: str, ctx: _Context) -> tuple[Any, Position]:
    """The option for ``entry`` (named ``key`` in overrides) after ``override`` entries and command-line choices."""
    option, where = entry.option, entry.position
    if key in ctx.defaults_overrides:
        ctx.used_overrides.add(key)
        chosen = ctx.defaults_overrides[key]
        option, where = chosen.option, chosen.position
    cli = ctx.choices.get(key)
    if cli is not None:
        ctx.used.add(key)
        where = ("<override>", cli.index + 1, 1)
        if cli.prefix == "~":
            if cli.has_value and cli.value != option:
                ctx.errors.append(override_error(cli, cli.text, cli.index, "LPC407",
                                                 f"'{entry.group}' is '{option}', not '{cli.value}'"))
            return None, where
        if cli.value is None or isinstance(cli.value, dict):
            ctx.errors.append(override_error(cli, cli.text, cli.index, "LPC404",
                                             "a config group choice must be an option name or a list of names",
                                             f"to remove the group write ~{cli.key}"))
            return None, where
        option = [str(o) for o in cli.value] if isinstance(cli.value, list) else str(cli.value)
    return option, where


def _check_unused(ctx: _Context, group_overrides: list[Override]) -> None:
    for key, entry in ctx.defaults_overrides.items():
        if key not in ctx.used_overrides:
            message = f"'override {entry.group}' matches no config group chosen in a defaults list"
            ctx.errors.append(_entry_error(entry, "LPC409", message, "remove 'override' to add the group"))
    for override in group_overrides:
        key = override.group_key.lstrip("/")
        if key in ctx.choices and key not in ctx.used and override.prefix in ("", "~"):
            hint = f"to add it use +{override.text.lstrip('~')}" if override.prefix == "" else None
            message = f"config group '{override.key}' is not in the defaults list"
            ctx.errors.append(override_error(override, override.text, override.index, "LPC409", message, hint))


def _final_package(entry: DefaultEntry, header: str | None, parent_package: str) -> str:
    """Hydra's package rule: entry package (relative), else ``# @package`` (absolute), else the group."""
    if entry.package is not None:
        package = entry.package
    elif header is not None and header != "_group_":
        package = "_global_" if header in ("", "_global_") else (
            header if header.startswith("_global_.") else f"_global_.{header}")
    else:
        package = (entry.relative_group or "").replace("/", ".")
    joined = package if parent_package == "" else parent_package if package == "" else f"{parent_package}.{package}"
    last = joined.rfind("_global_")
    return joined if last == -1 else joined[last + len("_global_") + 1:]


def _merge_part(tree: dict[str, Any], positions: dict[SpecPath, Position], document: RawDocument,
                package: str, where: Position, ctx: _Context) -> None:
    content = {k: v for k, v in document.tree.items() if k != "defaults"}
    prefix: SpecPath = tuple(package.split(".")) if package else ()
    shifted = {(*prefix, *path): pos for path, pos in document.positions.items() if path[:1] != ("defaults",)}
    for depth in range(len(prefix)):
        shifted[prefix[:depth]] = where
    for key in reversed(prefix):
        content = {key: content}
    try:
        merge_located(tree, positions, content, shifted)
    except MergeConflict as exc:
        file, line, col = shifted.get(exc.path, where)
        spec_path = ".".join(str(p) for p in exc.path)
        ctx.errors.append(SpecError(file, line, col, "LPC410", spec_path, str(exc), "use the same shape in both files"))


def _missing_option(entry: DefaultEntry, name: str, where: Position, ctx: _Context) -> SpecError:
    options = ctx.repo.options(entry.group or entry.base)
    if entry.group is not None and not ctx.repo.is_group(entry.group):
        message = f"config group '{entry.group}' does not exist (no folder '{entry.group}/')"
        close = difflib.get_close_matches(entry.group, ctx.repo.groups(), n=1)
        hint = f"did you mean '{close[0]}'?" if close else "create the folder or fix the name"
        return SpecError(*where, "LPC402", "defaults", message, hint)
    close = difflib.get_close_matches(name, options, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"choose one of: {', '.join(options) or 'none'}"
    message = f"no option '{name}' in config group '{entry.group}'" if entry.group else f"no config '{name}'"
    if where[0] == "<override>":
        return SpecError(*where, "LPC403", entry.group or "", message, hint)
    return SpecError(*where, "LPC403", "defaults", message, hint)


def _entry_error(entry: DefaultEntry, code: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError(*entry.position, code, "defaults", message, hint)
