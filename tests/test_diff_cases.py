"""The golden table of edit kinds (tests/diff_cases/edits.yaml) and the edits that are no change.

Each edit applies Hydra overrides to tests/diff_cases/base and must give the pipeline the class and
the changed spec paths the table names. Each no-change case (tests/diff_cases/no_change/<case>/)
overlays files on the base that write the same spec differently: `loopc plan` reports no change.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from loopc.compiler.api import load_project
from loopc.compiler.cli.main import main
from loopc.compiler.diff.classes import CLASSES
from loopc.compiler.diff.pipelines import Side, diff_pipelines
from loopc.compiler.spec.models import Spec

CASES = Path(__file__).resolve().parent / "diff_cases"
BASE = CASES / "base"
EDITS = yaml.safe_load((CASES / "edits.yaml").read_text(encoding="utf-8"))
NO_CHANGE = sorted(p.name for p in (CASES / "no_change").iterdir())


def sides(path: Path, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Side]:
    return {item.spec.pipeline.name: Side(item.spec, item.display) for item in load_project(path, overrides)}


@pytest.fixture(scope="module")
def base() -> dict[str, Side]:
    return sides(BASE)


def test_the_table_has_forty_edits_across_every_section_and_class():
    assert len(EDITS) >= 40
    sections = {path.split(".")[0].split("[")[0] for edit in EDITS for path in edit["paths"]}
    assert sections == set(Spec.model_fields) - {"loopc"}  # loopc: 1 is the only version there is
    assert {edit["class"] for edit in EDITS} == {*CLASSES, None}
    assert len({edit["edit"] for edit in EDITS}) == len(EDITS)


@pytest.mark.parametrize("edit", EDITS, ids=[edit["edit"] for edit in EDITS])
def test_an_edit_gets_its_class_and_its_paths(base, edit):
    (diff,) = diff_pipelines(base, sides(BASE, edit["overrides"]))
    assert diff.klass == edit["class"]
    assert sorted(c.change.display for c in diff.changes) == sorted(edit["paths"])
    assert diff.status == ("changed" if edit["paths"] else "unchanged")


def overlay(case: str, into: Path) -> Path:
    """The base project with the case's files written over it."""
    shutil.copytree(BASE, into)
    source = CASES / "no_change" / case
    for file in source.rglob("*.yaml"):
        target = into / file.relative_to(source)
        assert not target.exists() or target.read_bytes() != file.read_bytes(), f"{case}: {file.name} is a copy"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(file, target)
    return into


def test_every_kind_of_no_change_has_a_case():
    assert set(NO_CHANGE) == {"reformatted", "reordered", "comments", "numbers", "anchors", "config_group"}


@pytest.mark.parametrize("case", NO_CHANGE)
def test_writing_the_same_spec_differently_is_no_change(base, case, tmp_path, capsys):
    head = overlay(case, tmp_path / case)
    (diff,) = diff_pipelines(base, sides(head))
    assert (diff.status, diff.changes) == ("unchanged", ())
    assert main(["plan", str(head), "--base-dir", str(BASE), "--format", "markdown"]) == 0
    assert "no changes (1 pipeline unchanged)" in capsys.readouterr().out
    (edited,) = diff_pipelines(base, sides(head, ["++model.optimizer.lr=0.02"]))  # the same tree still sees edits
    assert [c.change.display for c in edited.changes] == ["model.optimizer.lr"]
