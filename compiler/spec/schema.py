"""The JSON Schema of the spec language, generated from the pydantic models (never edited by hand)."""

from __future__ import annotations

import json
from typing import Any

from loopc.compiler.spec.models import Spec

SCHEMA_FILE = "loopc.schema.json"
_DEFAULTS = {
    "description": "Hydra defaults list: config groups composed into this pipeline, e.g. "
                   "'- model: logistic', '- dataset@datasets.extra: customers', '- _self_'",
    "type": "array",
    "items": {
        "anyOf": [
            {"type": "string"},
            {"type": "object", "minProperties": 1, "maxProperties": 1,
             "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "null"},
                                                {"type": "array", "items": {"type": "string"}}]}},
        ]
    },
}


def spec_schema() -> dict[str, Any]:
    """Spec.model_json_schema() plus the ``defaults`` list that composition consumes."""
    schema = Spec.model_json_schema()
    schema["properties"]["defaults"] = _DEFAULTS
    schema["required"] = ["loopc"]  # the other sections may come from config groups in the defaults list
    _allow_transform_shorthand(schema["$defs"]["Feature"]["properties"])
    _allow_selectors(schema["$defs"])
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def _allow_transform_shorthand(properties: dict[str, Any]) -> None:
    """Editors should accept ``transform: standardize`` and ``transforms: [standardize, ...]`` too."""
    full = properties["transforms"]["items"]
    by_name = {"type": "string", "enum": sorted(full["discriminator"]["mapping"])}
    item = {"anyOf": [by_name, full]}
    properties["transforms"]["items"] = item
    properties["transform"] = {
        "description": "shorthand for 'transforms': one transform or a list",
        "anyOf": [by_name, full, {"type": "array", "items": item}],
    }


_PATTERNS = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
_COLUMN_SELECTOR = {
    "description": "one feature per dataset column matched (compiler/frontend/selectors.py): a name pattern, "
                   "a list of patterns, or {match, type, exclude}",
    "anyOf": [*_PATTERNS["anyOf"], {"type": "object", "additionalProperties": False, "properties": {
        "match": _PATTERNS, "exclude": _PATTERNS,
        "type": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}}}],
}


def _allow_selectors(defs: dict[str, Any]) -> None:
    """Editors should accept the selectors composition expands: ``columns: {from: FILE}`` and a feature's
    ``columns:``."""
    written = defs["Dataset"]["properties"]["columns"]
    defs["ColumnOverride"] = {key: value for key, value in defs["Column"].items() if key != "required"}
    from_file = {"type": "object", "required": ["from"],
                 "properties": {"from": {"type": "string", "description": "declare the columns from this Parquet "
                                         "file's schema; entries written beside it merge over them"}},
                 "additionalProperties": {"$ref": "#/$defs/ColumnOverride"}}
    defs["Dataset"]["properties"]["columns"] = {"anyOf": [written, from_file], "title": written.get("title")}
    defs["Feature"]["properties"]["columns"] = _COLUMN_SELECTOR


def schema_text() -> str:
    """Deterministic text of the schema: sorted keys, two-space indent, LF, trailing newline."""
    return json.dumps(spec_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
