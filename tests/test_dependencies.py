"""pyproject's runtime dependencies are exactly the third-party distributions compiler/ and runtime/ import."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("compiler", "runtime")


def imported_top_levels(folder: Path) -> set[str]:
    """Top-level module names of every absolute import (module level or inside functions) under ``folder``."""
    names: set[str] = set()
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def third_party(names: set[str]) -> set[str]:
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("loopc", "__future__")}


def normalized(distribution: str) -> str:
    """PEP 503 normalized name: PyYAML -> pyyaml, pydantic_core -> pydantic-core."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return {normalized(re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def distributions_of(modules: set[str]) -> dict[str, set[str]]:
    """Import name -> the installed distributions that provide it (yaml -> PyYAML)."""
    provided = importlib.metadata.packages_distributions()
    return {module: {normalized(d) for d in provided.get(module, [])} for module in sorted(modules)}


def test_the_import_scan_sees_function_level_imports_and_skips_stdlib(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import os\nimport yaml.nodes\ndef f():\n    from scipy import stats\n"
                                   "from loopc.runtime import units\nfrom . import sibling\n")  # fmt: skip
    assert third_party(imported_top_levels(tmp_path)) == {"yaml", "scipy"}


def test_every_import_maps_to_an_installed_distribution() -> None:
    modules = set().union(*(third_party(imported_top_levels(REPO / p)) for p in PACKAGES))
    unmapped = [module for module, dists in distributions_of(modules).items() if not dists]
    assert not unmapped, f"imports with no installed distribution: {unmapped}"


def test_dependencies_are_declared_exactly_as_imported() -> None:
    modules = set().union(*(third_party(imported_top_levels(REPO / p)) for p in PACKAGES))
    used = set().union(*distributions_of(modules).values())
    assert declared() - used == set(), "declared in pyproject but never imported by compiler/ or runtime/"
    assert used - declared() == set(), "imported by compiler/ or runtime/ but not declared in pyproject"
