"""Write a starting pipeline for a Parquet table: its columns from the schema, numeric features by selector."""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from loopc.compiler.errors import UsageError
from loopc.compiler.frontend.selectors import feature_name, parquet_columns, suffixed
from loopc.compiler.spec.schema import SCHEMA_FILE, schema_text

_TASKS = {"bool": "binary_classification", "float": "regression"}


def init_from_data(target: Path, data: Path, label: str | None) -> int:
    """Write ``target``/pipeline.yaml for ``data``; columns stay in sync through ``columns: {from: ...}``."""
    try:
        columns = parquet_columns(data)
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the schema of {data}: {exc}") from None
    label = label or list(columns)[-1]
    if label not in columns:
        raise UsageError(f"--label {label}: {data} has no such column; columns: {', '.join(columns)}")
    relative = Path(os.path.relpath(data.resolve(), target.resolve())).as_posix()
    (target / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8", newline="\n")
    text = f"# yaml-language-server: $schema={SCHEMA_FILE}\n" + yaml.safe_dump(
        _spec(target, data, relative, columns, label), sort_keys=False, default_flow_style=None, width=120,
        allow_unicode=True)
    (target / "pipeline.yaml").write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {target / 'pipeline.yaml'}: {len(columns)} columns from {data}, label '{label}'")
    print(f"next: loopc validate {target}")
    return 0


def _spec(target: Path, data: Path, relative: str, columns: dict, label: str) -> dict:
    dataset = feature_name(data.stem)
    numeric = [c for c, spec in columns.items() if c != label and spec["type"] in ("int", "float")]
    if not numeric:
        raise UsageError(f"{data} has no int or float column besides '{label}' to start features from")
    declared = {**columns, label: {**columns[label], "nullable": False}}
    path = literal(relative)
    return {
        "loopc": 1,
        "pipeline": {"name": feature_name(target.resolve().name), "owner": None},
        "datasets": {dataset: {"source": {"path": path}, "columns": {"from": path, **declared}}},
        "features": {"numeric": {"columns": {"type": ["int", "float"]}, "transform": "standardize"}},
        "model": {"name": suffixed(dataset, "model"),
                  "task": _TASKS.get(columns[label]["type"], "multiclass_classification"),
                  "dataset": dataset, "label": literal(label), "features": ["numeric"]},
    }


def literal(text: str) -> str:
    """``text`` as a spec value that composes to itself: each ``${`` escaped as ``\\${`` (with the backslashes
    right before it doubled), so that no interpolation reads it; column names (mapping keys) need none."""
    return re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
