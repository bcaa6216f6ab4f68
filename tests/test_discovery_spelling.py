"""Discovery lists YAML files spelled as ``str(Path)`` spells them, whatever the spelling of the root."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from loopc.compiler.api import _SKIP_DIRS, _yaml_files, discover


def spelled_by_pathlib(root: str) -> list[str]:
    """The reference: one Path per folder; a folder's files sorted, then its subfolders' in name order."""
    found = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(d for d in subfolders if d not in _SKIP_DIRS)
        found.extend(sorted(str(Path(folder) / n) for n in names if n.endswith(".yaml")))
    return found


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


BASE = Path(__file__).resolve().parent / "diff_cases" / "base"


@pytest.mark.parametrize("spelling", ["ABSOLUTE", ".", "specs", "./specs/"])
def test_config_group_folders_are_not_walked_and_hold_no_pipelines(tmp_path, monkeypatch, spelling):
    root = tmp_path / "specs"
    shutil.copytree(BASE, root)
    shutil.copytree(BASE, root / "one")
    shutil.copytree(BASE, root / "one" / "other")
    nested = root / "one" / "model" / "deeper"
    nested.mkdir()
    (nested / "pipeline.yaml").write_text("loopc: 1\npipeline: {name: not_a_pipeline}\n")  # an option's folder
    visited = []

    def walk(top, followlinks=True):
        for folder, subfolders, files in os.walk(top, followlinks=followlinks):
            visited.append(Path(folder).resolve().relative_to(root).as_posix())
            yield folder, subfolders, files  # discovery prunes this very list

    monkeypatch.chdir(root if spelling == "." else tmp_path)
    given = root if spelling == "ABSOLUTE" else Path(spelling)
    found = [str(Path(file).resolve().relative_to(root)) for file, _, _ in discover(given, walk=walk)]
    assert found == ["one/other/pipeline.yaml", "one/pipeline.yaml", "pipeline.yaml"]
    assert visited == [".", "one", "one/other"]  # no group folder (dataset, model) entered, at any depth


def test_a_group_named_dot_makes_the_pipeline_folder_a_group_folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "a.yaml").write_text("loopc: 1\ndefaults:\n  - ./model: logistic\n  - _self_\npipeline: {name: a}\n")
    (tmp_path / "b.yaml").write_text("loopc: 1\npipeline: {name: b}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.yaml").write_text("loopc: 1\npipeline: {name: c}\n")
    assert [(file.name, groups) for file, _, groups in discover(tmp_path)] == [("a.yaml", (".",))]
