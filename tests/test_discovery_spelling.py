"""Discovery lists YAML files spelled as ``str(Path)`` spells them, whatever the spelling of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loopc.compiler.api import _SKIP_DIRS, _yaml_files


def spelled_by_pathlib(root: str) -> list[str]:
    """The reference: one Path per folder, depth counted from the root, shallow files first, then sorted."""
    depth = {root: 1}
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = [d for d in subfolders if d not in _SKIP_DIRS]
        depth.update((os.path.join(folder, d), depth[folder] + 1) for d in subfolders)
        found.extend((depth[folder], str(Path(folder) / n)) for n in names if n.endswith(".yaml"))
    return [name for _, name in sorted(found)]


@pytest.mark.parametrize("root", [".", "./proj", "proj", "proj/", "proj//team", "proj/./team", "proj/team/../team",
                                  "ABSOLUTE"])
def test_names_are_spelled_as_pathlib_spells_them(tmp_path, monkeypatch, root):
    for relative in ("proj/p.yaml", "proj/zz.yaml", "proj/team/a/pipeline.yaml", "proj/team/a/model/m.yaml", "proj/team/b.yaml",
                     "proj/team/build/skipped.yaml", "proj/team/a/notes.txt", "top.yaml"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x: 1\n")
    monkeypatch.chdir(tmp_path)
    root = str(tmp_path / "proj") if root == "ABSOLUTE" else root
    listed = _yaml_files(Path(root))
    assert listed == spelled_by_pathlib(root) and listed
    assert not any("build" in name for name in listed)
    assert all(os.path.isfile(name) for name in listed)
