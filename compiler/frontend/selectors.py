"""Expand selectors in a composed tree: a dataset's columns read from a Parquet schema, one feature per
column matched by name pattern or type, model features chosen by pattern or selector name, and a monitor's
data-drift columns by pattern.

Every node a selector writes keeps the selector's position, so later errors point at the selector's line.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopc.compiler.errors import SpecError
from loopc.compiler.frontend.load import Position, SpecPath
from loopc.compiler.frontend.tree import copy_located, drop_positions

CODE = "LPC413"
_ARROW_TYPES = (("bool", "bool"), ("int", "int"), ("uint", "int"), ("float", "float"), ("halffloat", "float"),
                ("double", "float"), ("decimal", "float"), ("string", "string"), ("large_string", "string"),
                ("dictionary", "category"), ("timestamp", "timestamp"), ("date", "date"))
_GLOB = re.compile(r"[*?\[]")
_TYPES = ("int", "float", "bool", "string", "category", "timestamp", "date")
# (type in the file, type declared): the same type, none declared, or a refinement loopc can read
_COMPATIBLE = {*((t, t) for t in _TYPES), *((t, None) for t in _TYPES), ("string", "category"), ("int", "category"),
               ("int", "float")}


def expand_selectors(tree: dict[str, Any], positions: dict[SpecPath, Position],
                     base: Path) -> tuple[list[SpecError], set[str]]:
    """Expand every selector in place; returns the errors and the data files the result depends on."""
    errors: list[SpecError] = []
    inputs: set[str] = set()
    datasets = tree.get("datasets")
    for name, dataset in (datasets.items() if isinstance(datasets, dict) else ()):
        columns = dataset.get("columns") if isinstance(dataset, dict) else None
        if isinstance(columns, dict) and isinstance(columns.get("from"), str):
            _columns_from(tree, positions, ("datasets", name, "columns"), base, errors, inputs)
    if errors:
        return errors, inputs  # features select among the columns: not without them
    groups = _feature_selectors(tree, positions, errors) if isinstance(tree.get("features"), dict) else {}
    _model_features(tree, positions, groups, errors)
    _drift_columns(tree, positions, errors)
    return errors, inputs


def _error(positions: dict[SpecPath, Position], path: SpecPath, message: str, hint: str) -> SpecError:
    return SpecError(*positions.get(path, ("", 1, 1)), CODE, ".".join(map(str, path)), message, hint)


def parquet_columns(path: Path) -> dict[str, dict[str, str]]:
    """``{column: {type: T}}`` for every column of a Parquet file's schema, in schema order."""
    import pyarrow.parquet as pq

    columns = {}
    for field in pq.read_schema(path):
        kind = str(field.type)
        loopc_type = next((t for prefix, t in _ARROW_TYPES if kind.startswith(prefix)), None)
        if loopc_type is None:
            raise ValueError(f"column '{field.name}' has the type {kind}, which loopc does not read")
        columns[field.name] = {"type": loopc_type}
    return columns


def _columns_from(tree: dict[str, Any], positions: dict[SpecPath, Position], at: SpecPath, base: Path,
                  errors: list[SpecError], inputs: set[str]) -> None:
    columns = tree["datasets"][at[1]]["columns"]
    where = positions.get((*at, "from"), positions.get(at, ("", 1, 1)))
    file = base / columns["from"]
    inputs.add(str(file))
    explicit = {k: v for k, v in columns.items() if k != "from"}
    try:
        derived = parquet_columns(file)
    except FileNotFoundError:
        if explicit and all(isinstance(v, dict) and "type" in v for v in explicit.values()):
            positions.pop((*at, "from"), None)  # unreachable here: the written-out columns stand, unchecked
            tree["datasets"][at[1]]["columns"] = explicit
            return
        errors.append(_error(positions, (*at, "from"), f"cannot read the columns of '{columns['from']}': "
                             "no such file", "give the path of a Parquet file relative to the pipeline file"))
        return
    except (OSError, ValueError) as exc:
        errors.append(_error(positions, (*at, "from"), f"cannot read the columns of '{columns['from']}': {exc}",
                             "give the path of a Parquet file relative to the pipeline file"))
        return
    for name, own in explicit.items():
        if name not in derived:
            errors.append(_error(positions, (*at, name), f"column '{name}' is not in '{columns['from']}'",
                                 f"columns there: {', '.join(list(derived)[:8])}..."))
        elif isinstance(own, dict) and (derived[name]["type"], own.get("type")) not in _COMPATIBLE:
            file_type = derived[name]["type"]
            errors.append(_error(positions, (*at, name, "type"), f"column '{name}' is {file_type} in "
                                 f"'{columns['from']}', declared {own['type']}", f"declare it as {file_type}"))
    result = {}
    for name, column in derived.items():
        own = explicit.get(name)
        result[name] = {**column, **own} if isinstance(own, dict) else column
        positions.setdefault((*at, name), where)
        for key in result[name]:
            positions.setdefault((*at, name, key), where)
    positions.pop((*at, "from"), None)
    tree["datasets"][at[1]]["columns"] = result


def _model_dataset_columns(tree: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """(the model's dataset's columns, the model's label); no columns where any of it is malformed (validation
    names that at its line)."""
    model = tree.get("model") if isinstance(tree.get("model"), dict) else {}
    chosen, datasets = model.get("dataset"), tree.get("datasets")
    dataset = datasets.get(chosen) if isinstance(chosen, str) and isinstance(datasets, dict) else None
    columns = dataset.get("columns") if isinstance(dataset, dict) else None
    return (columns if isinstance(columns, dict) else {}), model.get("label")


def _matches(name: str, column: Any, selector: dict[str, Any]) -> bool:
    patterns = selector.get("match", "*")
    types = selector.get("type")
    excluded = selector.get("exclude", [])
    patterns = [patterns] if isinstance(patterns, str) else patterns
    types = [types] if isinstance(types, str) else types
    excluded = [excluded] if isinstance(excluded, str) else excluded
    kind = column.get("type") if isinstance(column, dict) else None
    return (any(fnmatch.fnmatchcase(name, str(p)) for p in patterns)
            and (types is None or kind in types)
            and not any(fnmatch.fnmatchcase(name, str(p)) for p in excluded))


IDENTIFIER_LENGTH = 63  # the longest name compiler/spec/models.IDENT accepts


def feature_name(column: str) -> str:
    """The feature a selector makes of ``column``, an identifier: lower case, runs of other characters as
    '_', ``column_`` before a leading digit, cut to IDENTIFIER_LENGTH characters."""
    name = re.sub(r"[^a-z0-9_]+", "_", column.lower()).strip("_") or "column"
    name = f"column_{name}" if name[0].isdigit() else name
    return name[:IDENTIFIER_LENGTH].rstrip("_")


def selected_feature_names(columns: list[str]) -> list[str]:
    """The features a selector makes of ``columns``, in order: :func:`feature_name` of each. Where several
    columns get the same name, a column spelled as that name keeps it, the first of the others takes it if
    it is still free, and the rest take the first of ``NAME_2``, ``NAME_3``, ... that neither another column
    gets nor an earlier one took."""
    names = [feature_name(c) for c in columns]
    plain, taken = set(names), {n for c, n in zip(columns, names) if n == c}
    made = []
    for column, name in zip(columns, names):
        if name == column or name not in taken:
            made.append(name)
        else:
            made.append(next(n for n in (suffixed(name, str(k)) for k in itertools.count(2))
                             if n not in taken and n not in plain))
        taken.add(made[-1])
    return made


def suffixed(name: str, suffix: str) -> str:
    """``NAME_SUFFIX``, ``name`` (an identifier) cut so that it stays one."""
    return name[:IDENTIFIER_LENGTH - len(suffix) - 1].rstrip("_") + "_" + suffix


def _feature_selectors(tree: dict[str, Any], positions: dict[SpecPath, Position],
                       errors: list[SpecError]) -> dict[str, list[str]]:
    """Replace each feature with ``columns:`` by one feature per matching column; selector -> its features."""
    features = tree["features"]
    if not any(isinstance(f, dict) and "columns" in f for f in features.values()):
        return {}
    columns, label = _model_dataset_columns(tree)
    expanded: dict[str, Any] = {}
    groups: dict[str, list[str]] = {}
    for name, feature in features.items():
        here = ("features", name)
        if not (isinstance(feature, dict) and "columns" in feature):
            expanded[name] = feature
            continue
        selector = feature["columns"]
        selector = {"match": selector} if isinstance(selector, (str, list)) else selector
        if not isinstance(selector, dict) or not set(selector) <= {"match", "type", "exclude"}:
            errors.append(_error(positions, (*here, "columns"), "a column selector is a name pattern or "
                                 "{match: PATTERN, type: TYPE, exclude: PATTERN}", "e.g. columns: {type: float}"))
            continue
        chosen = [c for c, spec in columns.items() if c != label and _matches(c, spec, selector)]
        if not chosen:
            errors.append(_error(positions, (*here, "columns"), f"selector '{name}' matches no column of the "
                                 "model's dataset", f"columns: {', '.join(list(columns)[:8]) or 'none'}"))
            continue
        groups[name] = _expand_one(name, feature, chosen, features, expanded, positions, errors)
        drop_positions(feature, positions, here)
    tree["features"] = expanded
    return groups


def _expand_one(name: str, feature: dict[str, Any], chosen: list[str], features: dict[str, Any],
                expanded: dict[str, Any], positions: dict[SpecPath, Position], errors: list[SpecError]) -> list[str]:
    here = ("features", name)
    where = positions.get((*here, "columns"), positions.get(here, ("", 1, 1)))
    rest = {k: v for k, v in feature.items() if k != "columns"}
    made = []
    for column, target in zip(chosen, selected_feature_names(chosen)):
        if target in expanded or (target in features and target != name):
            errors.append(_error(positions, (*here, "columns"), f"selector '{name}' makes feature '{target}' "
                                 "(from column '" + column + "'), which already exists", "exclude that column"))
            continue
        copy = copy_located(rest, positions, here, positions, ("features", target))
        expanded[target] = {"column": column, **copy}
        positions[("features", target)] = where
        positions[("features", target, "column")] = where
        made.append(target)
    return made


def _model_features(tree: dict[str, Any], positions: dict[SpecPath, Position], groups: dict[str, list[str]],
                    errors: list[SpecError]) -> None:
    """Expand selector names and patterns (``mean_*``) in ``model.features``, in the features' order."""
    model = tree.get("model")
    listed = model.get("features") if isinstance(model, dict) else None
    if not isinstance(listed, list) or not any(isinstance(i, str) and (i in groups or _GLOB.search(i))
                                               for i in listed):
        return
    names = list(tree["features"]) if isinstance(tree.get("features"), dict) else []

    def lookup(item: str) -> list[str] | None:
        if item in groups:
            return groups[item]
        return [n for n in names if fnmatch.fnmatchcase(n, item)] if _GLOB.search(item) else None

    model["features"] = _expand_list(listed, ("model", "features"), positions, errors, lookup,
                                     "feature", f"features: {', '.join(names[:8])}")


def _drift_columns(tree: dict[str, Any], positions: dict[SpecPath, Position], errors: list[SpecError]) -> None:
    """Expand name patterns (``"mean *"``) in each monitor's ``data_drift.columns`` to the columns of the model's
    dataset that match, in the dataset's order; the label is never matched, as in a feature selector."""
    monitors = tree.get("monitors")
    columns, label = _model_dataset_columns(tree)
    if not isinstance(monitors, dict) or not columns:
        return
    names = [c for c in columns if c != label]

    def lookup(item: str) -> list[str] | None:
        return [c for c in names if fnmatch.fnmatchcase(c, item)] if _GLOB.search(item) else None

    for name, monitor in monitors.items():
        drift = monitor.get("data_drift") if isinstance(monitor, dict) else None
        listed = drift.get("columns") if isinstance(drift, dict) else None
        if isinstance(listed, list) and any(isinstance(i, str) and _GLOB.search(i) for i in listed):
            drift["columns"] = _expand_list(listed, ("monitors", name, "data_drift", "columns"), positions, errors,
                                            lookup, "column of the model's dataset", f"columns: {', '.join(names[:8])}")


def _expand_list(listed: list, here: SpecPath, positions: dict[SpecPath, Position], errors: list[SpecError],
                 lookup: Callable[[str], list[str] | None], what: str, hint: str) -> list:
    """``listed`` with each selector name or pattern replaced by what ``lookup`` finds (None: the item stays as it
    is), once each and in order, the items' positions moved with them; an error at a pattern that finds nothing."""
    result, where_of = [], []
    for index, item in enumerate(listed):
        where = positions.get((*here, index), positions.get(here, ("", 1, 1)))
        found = lookup(item) if isinstance(item, str) else None
        found = [item] if found is None else found
        if not found and _GLOB.search(item):
            errors.append(SpecError(*where, CODE, ".".join(map(str, (*here, index))), f"'{item}' matches no {what}",
                                    hint))
        for name in found:
            if name not in result:
                result.append(name)
                where_of.append(where)
    for index in range(len(listed)):
        positions.pop((*here, index), None)
    for index, where in enumerate(where_of):
        positions[(*here, index)] = where
    return result
