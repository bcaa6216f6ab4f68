"""The tree tells the loop: allowed import directions between subpackages, and the runtime stands alone.

loopc.runtime never imports loopc.compiler (STYLE.md section 14); inside each side, a subpackage
imports only the ones below it in the tables here (docs/internals.md draws the same picture).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SIDES = {"loopc.runtime": REPO / "runtime", "loopc.compiler": REPO / "compiler"}

_RUNTIME_STAGES = {"data", "features", "train", "evaluate", "gate", "registry", "monitor", "store", "units",
                   "export", "score"}
# unit (subpackage or top-level module) -> units of loopc.runtime it may import
RUNTIME_ALLOWED: dict[str, set[str]] = {
    "units": set(),
    "faults": set(),  # the SIGKILL test hook, a leaf both writers (store, registry) use
    "store": {"faults"},
    "evaluate": set(),
    "registry": {"faults"},
    "data": {"units"},
    "features": {"data", "units"},
    "train": {"store"},
    "gate": {"evaluate"},
    "monitor": {"data", "evaluate", "gate", "store", "units"},
    "export": {"data", "features", "train", "store"},  # export/bundle_score imports nothing of loopc
    "score": {"data", "export", "registry", "store"},  # data: the validate step's casting
    "execution": _RUNTIME_STAGES,
    "steps": _RUNTIME_STAGES | {"execution"},
    "__main__": {"data", "execution", "registry", "store"},  # data: the Arrow pool named before Arrow loads
}
# unit -> units of loopc.compiler it may import, and units of loopc.runtime it may import
COMPILER_ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    "errors": (set(), set()),
    "frontend": ({"errors"}, set()),
    "spec": ({"errors", "frontend"}, {"data", "evaluate", "units"}),
    "api": ({"errors", "frontend", "spec"}, set()),
    "plan": ({"errors", "frontend", "spec"}, {"execution"}),
    "targets": ({"errors", "plan", "spec"}, set()),  # spec: the cron grammar scheduler files must obey
    "diff": ({"errors", "spec"}, set()),
    "cli": ({"errors", "frontend", "spec", "api", "plan", "targets", "diff"}, set(RUNTIME_ALLOWED)),
}


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every module an AST imports, lazily or not, relative imports resolved against ``package``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def unit_of(name: str) -> tuple[str, str] | None:
    """('loopc.runtime', 'data') for loopc.runtime.data.checks; None outside loopc's two sides."""
    for side in SIDES:
        if name == side:
            return side, ""
        if name.startswith(side + "."):
            return side, name[len(side) + 1:].split(".")[0]
    return None


def modules(side: str) -> list[tuple[str, Path]]:
    root = SIDES[side]
    found = []
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found.append((".".join([side, *parts]), path))
    return found


def import_edges(side: str) -> set[tuple[str, str, str, str]]:
    """(module, its unit, imported side, imported unit) for every import between units."""
    edges = set()
    for module, path in modules(side):
        own = unit_of(module)[1]
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for name in imported_names(ast.parse(path.read_text(encoding="utf-8")), package):
            target = unit_of(name)
            if target and target != (side, own) and target[1]:
                edges.add((module, own, *target))
    return edges


def violations(edges, allowed_runtime, allowed_compiler) -> list[str]:
    bad = []
    for module, own, side, unit in sorted(edges):
        if module.startswith("loopc.runtime"):
            ok = side == "loopc.runtime" and unit in allowed_runtime.get(own, set())
        else:
            same, runtime = allowed_compiler.get(own, (set(), set()))
            ok = unit in (same if side == "loopc.compiler" else runtime)
        if not ok:
            bad.append(f"{module} imports {side}.{unit}")
    return bad


def test_every_import_between_subpackages_goes_in_an_allowed_direction():
    edges = import_edges("loopc.runtime") | import_edges("loopc.compiler")
    assert violations(edges, RUNTIME_ALLOWED, COMPILER_ALLOWED) == []


def test_the_allowed_directions_have_no_cycle():
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from((a, b) for a, targets in RUNTIME_ALLOWED.items() for b in targets)
    graph.add_edges_from(("c:" + a, "c:" + b) for a, (same, _) in COMPILER_ALLOWED.items() for b in same)
    assert nx.is_directed_acyclic_graph(graph)


def test_every_unit_on_disk_has_a_row_in_the_tables():
    for side, table in (("loopc.runtime", RUNTIME_ALLOWED), ("loopc.compiler", COMPILER_ALLOWED)):
        units = {unit_of(module)[1] for module, _ in modules(side)} - {""}
        assert units == set(table), side


def test_the_check_sees_a_forbidden_import():
    tree = ast.parse("from loopc.compiler.plan.pipeline import Plan\nimport importlib\n"
                     "importlib.import_module('loopc.compiler')\nfrom ..steps import data\nfrom .checks import x")
    names = imported_names(tree, "loopc.runtime.data")
    assert {"loopc.compiler.plan.pipeline", "loopc.compiler", "loopc.runtime.steps.data",
            "loopc.runtime.data.checks"} <= names
    edges = {("loopc.runtime.data.sources", "data", "loopc.runtime", "steps"),
             ("loopc.runtime.train.trainer", "train", "loopc.compiler", "plan"),
             ("loopc.compiler.frontend.load", "frontend", "loopc.compiler", "spec")}
    assert len(violations(edges, RUNTIME_ALLOWED, COMPILER_ALLOWED)) == 3


def test_importing_every_runtime_module_loads_no_compiler_module():
    names = [module for module, _ in modules("loopc.runtime") if not module.endswith("__main__")]
    code = (
        "import importlib, json, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('loopc.compiler'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("side", sorted(SIDES))
def test_every_subpackage_says_what_it_owns_and_what_it_must_not_import(side):
    for module, path in modules(side):
        if path.name == "__init__.py" and module != side:
            doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
            assert "import" in doc.lower() and len(doc) > 80, module


def test_every_package_is_installed():
    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {module for side in SIDES for module, path in modules(side) if path.name == "__init__.py"}
    assert on_disk <= declared


def test_one_import_style_throughout():
    """Absolute imports only, sorted; ruff's configuration lives in pyproject.toml."""
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "I,TID", "compiler", "runtime", "tests",
                           "benchmarks", "specs"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
