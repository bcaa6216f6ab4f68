"""pyproject's package list ships every module: a subpackage missing from it works in the editable install
(tests, ``make demo``) and is absent from the wheel a user installs."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Dotted package name -> its folder, for every folder with an ``__init__.py`` under a mapped top level."""
    found = {}
    for prefix, top in SETUPTOOLS["package-dir"].items():
        for init in (REPO / top).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / top)
            found[".".join([prefix, *relative.parts])] = init.parent
    return found


def test_every_python_package_is_listed():
    listed, present = set(SETUPTOOLS["packages"]), set(package_folders())
    assert present - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - present == set(), "these listed packages have no folder with an __init__.py"


def test_every_module_lives_in_a_listed_package():
    """A .py file in a folder without ``__init__.py`` (under compiler/ or runtime/) would not be shipped."""
    shipped = {folder for name, folder in package_folders().items() if name in SETUPTOOLS["packages"]}
    for top in ("compiler", "runtime"):
        orphans = [str(p.relative_to(REPO)) for p in (REPO / top).rglob("*.py")
                   if p.parent not in shipped and "__pycache__" not in p.parts]
        assert orphans == [], f"modules outside any shipped package: {orphans}"


def test_templates_and_specs_ship_their_data_files():
    """Jinja templates and bundled specs are data, not modules: package-data must take every file."""
    data = SETUPTOOLS["package-data"]
    assert data.get("loopc.templates") == ["**/*"]
    assert data.get("loopc.specs") == ["**/*"]
