"""loopc.runtime never imports loopc.compiler: the data plane stands alone (STYLE.md section 14)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import loopc.runtime

RUNTIME_DIR = Path(loopc.runtime.__file__).parent
MODULES = sorted(p.stem for p in RUNTIME_DIR.glob("*.py") if p.stem != "__init__")


def imported_names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = "loopc.runtime".split(".")[: max(0, 2 - node.level + 1)] if node.level else []
            names.add(".".join([*package, node.module] if node.module else package))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module", "__import__"
        ):
            names.update(a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str))
    return names


def test_no_runtime_source_mentions_an_import_of_the_compiler():
    offenders = {}
    for path in sorted(RUNTIME_DIR.glob("*.py")):
        bad = {n for n in imported_names(ast.parse(path.read_text(encoding="utf-8"))) if n.startswith("loopc.compiler")}
        if bad:
            offenders[path.name] = sorted(bad)
    assert offenders == {}


def test_importing_every_runtime_module_loads_no_compiler_module():
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module('loopc.runtime.' + name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('loopc.compiler'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == []


def test_the_check_sees_a_compiler_import():
    tree = ast.parse("from loopc.compiler.plan import Plan\nimport importlib\nimportlib.import_module('loopc.compiler')\n"
                     "from ..compiler import emit\nfrom .store import x")
    assert {"loopc.compiler.plan", "loopc.compiler", "loopc.runtime.store"} <= imported_names(tree)
