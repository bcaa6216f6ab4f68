"""Shared helpers for the planner and local-backend tests: load the example specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from loopc.compiler.plan.fingerprint import canonical_json, sha256_text
from loopc.compiler.spec.models import Spec

EXAMPLES = Path(__file__).resolve().parent.parent / "specs" / "examples"
EXAMPLE_NAMES = ("churn", "demand")


def merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Deep merge of mappings, ``top`` wins (OmegaConf merge semantics for plain dicts)."""
    out = dict(base)
    for key, value in top.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _group_tree(folder: Path, group: str, option: str) -> dict[str, Any]:
    text = (folder / group / f"{option}.yaml").read_text()
    header = re.search(r"^#\s*@package\s+(\S+)", text, re.M)
    tree: Any = yaml.safe_load(text)
    for part in reversed((header.group(1) if header else group).split(".")):
        tree = {part: tree}
    return tree


def compose_tree(pipeline_file: Path, choices: dict[str, str] | None = None) -> dict[str, Any]:
    """The example's composed tree: defaults list (group: option, _self_ last) merged in order."""
    own = yaml.safe_load(pipeline_file.read_text())
    defaults = own.pop("defaults", [])
    tree: dict[str, Any] = {}
    for entry in defaults:
        if entry == "_self_":
            tree = merge(tree, own)
            continue
        (group, option), = entry.items()
        tree = merge(tree, _group_tree(pipeline_file.parent, group, (choices or {}).get(group, option)))
    return tree if "_self_" in defaults else merge(tree, own)


def spec_from_tree(tree: dict[str, Any]) -> tuple[Spec, str]:
    spec = Spec.model_validate(tree)
    return spec, sha256_text(canonical_json(spec.model_dump(mode="json")))


def example_spec(name: str, **choices: str) -> tuple[Spec, str]:
    """(Spec, spec_hash) of an example through the real front end, e.g. example_spec("churn", model="mlp")."""
    from loopc.compiler.api import load_project

    (loaded,) = load_project(EXAMPLES / name / "pipeline.yaml", [f"{g}={o}" for g, o in choices.items()])
    return loaded.spec, loaded.spec_hash


def test_helper_composition_matches_the_front_end():
    """The tree helper (used where tests edit trees) composes exactly what load_project does."""
    for name in EXAMPLE_NAMES:
        for choice in ({}, {"model": "mlp"}, {"model": "linear"} if name == "demand" else {"model": "logistic"}):
            assert spec_from_tree(compose_tree(EXAMPLES / name / "pipeline.yaml", choice)) == example_spec(name, **choice)


# Golden inputs: (golden folder, example, config group choices).
GOLDEN_CASES = (("churn", "churn", {}), ("churn_sweep", "churn", {"model": "mlp"}), ("demand", "demand", {}))


def example_plans(name: str, **choices: str):
    """The plans of an example, as ``loopc compile`` builds them."""
    from loopc.compiler.plan.pipeline import plan_pipeline

    spec, spec_hash = example_spec(name, **choices)
    return plan_pipeline(spec, spec_hash=spec_hash)


def mask_version(text: str) -> str:
    """Generated headers carry the loopc version; golden files store it as VERSION."""
    from loopc.compiler.targets.jinja import loopc_version

    return text.replace(f"loopc {loopc_version()} ", "loopc VERSION ", 1)
