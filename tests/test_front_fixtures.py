"""One fixture per error code: `loopc validate` reports that code at the pinned file:line:col."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main
from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.load import read_spec_file
from loopc.compiler.spec.codes import ERROR_CODES

FIXTURES = Path(__file__).parent / "fixtures" / "invalid"

# code: (target under FIXTURES, file the error is in (relative to FIXTURES or "<override>"), line, column)
EXPECTED = {
    "LPC001": ("LPC001.yaml", "LPC001.yaml", 12, 13),
    "LPC002": ("LPC002.yaml", "LPC002.yaml", 1, 1),
    "LPC003": ("LPC003.yaml", "LPC003.yaml", 1, 1),
    "LPC004": ("LPC004.yaml", "LPC004.yaml", 24, 3),
    "LPC005": ("LPC005.yaml", "LPC005.yaml", 3, 1),
    "LPC006": ("LPC006.yaml", "LPC006.yaml", 4, 10),
    "LPC007": ("LPC007.yaml", "LPC007.yaml", 8, 3),
    "LPC101": ("LPC101.yaml", "LPC101.yaml", 4, 3),
    "LPC102": ("LPC102.yaml", "LPC102.yaml", 7, 3),
    "LPC103": ("LPC103.yaml", "LPC103.yaml", 11, 24),
    "LPC104": ("LPC104.yaml", "LPC104.yaml", 26, 3),
    "LPC105": ("LPC105.yaml", "LPC105.yaml", 30, 14),
    "LPC106": ("LPC106.yaml", "LPC106.yaml", 3, 3),
    "LPC107": ("LPC107.yaml", "LPC107.yaml", 19, 5),
    "LPC108": ("LPC108.yaml", "LPC108.yaml", 36, 5),
    "LPC201": ("LPC201.yaml", "LPC201.yaml", 27, 3),
    "LPC202": ("LPC202.yaml", "LPC202.yaml", 29, 27),
    "LPC203": ("LPC203.yaml", "LPC203.yaml", 21, 9),
    "LPC204": ("LPC204.yaml", "LPC204.yaml", 23, 10),
    "LPC205": ("LPC205.yaml", "LPC205.yaml", 28, 3),
    "LPC206": ("LPC206.yaml", "LPC206.yaml", 28, 3),
    "LPC207": ("LPC207.yaml", "LPC207.yaml", 32, 8),
    "LPC208": ("LPC208.yaml", "LPC208.yaml", 34, 8),
    "LPC209": ("LPC209.yaml", "LPC209.yaml", 34, 7),
    "LPC210": ("LPC210.yaml", "LPC210.yaml", 19, 27),
    "LPC211": ("LPC211.yaml", "LPC211.yaml", 18, 27),
    "LPC212": ("LPC212.yaml", "LPC212.yaml", 18, 44),
    "LPC213": ("LPC213.yaml", "LPC213.yaml", 36, 33),
    "LPC214": ("LPC214.yaml", "LPC214.yaml", 31, 18),
    "LPC215": ("LPC215.yaml", "LPC215.yaml", 32, 28),
    "LPC217": ("LPC217.yaml", "LPC217.yaml", 24, 3),
    "LPC218": ("LPC218.yaml", "LPC218.yaml", 40, 18),
    "LPC301": ("LPC301.yaml", "LPC301.yaml", 5, 3),
    "LPC302": ("LPC302.yaml", "LPC302.yaml", 4, 3),
    "LPC303": ("LPC303.yaml", "LPC303.yaml", 5, 3),
    "LPC304": ("LPC304.yaml", "LPC304.yaml", 5, 3),
    "LPC305": ("LPC305.yaml", "LPC305.yaml", 5, 3),
    "LPC401": ("LPC401.yaml", "LPC401.yaml", 1, 1),
    "LPC402": ("LPC402", "LPC402/pipeline.yaml", 3, 5),
    "LPC403": ("LPC403", "LPC403/pipeline.yaml", 2, 5),
    "LPC404": ("LPC404.yaml", "<override>", 1, 1),
    "LPC405": ("LPC405.yaml", "<override>", 1, 1),
    "LPC406": ("LPC406.yaml", "<override>", 1, 1),
    "LPC407": ("LPC407.yaml", "<override>", 1, 1),
    "LPC408": ("LPC408.yaml", "LPC408.yaml", 6, 3),
    "LPC409": ("LPC409", "LPC409/pipeline.yaml", 3, 5),
    "LPC410": ("LPC410", "LPC410/pipeline.yaml", 31, 3),
    "LPC411": ("LPC411.yaml", "LPC411.yaml", 6, 3),
    "LPC412": ("LPC412.yaml", "<override>", 1, 1),
    "LPC413": ("LPC413.yaml", "LPC413.yaml", 10, 7),
    "LPC501": ("LPC501-does-not-exist.yaml", "LPC501-does-not-exist.yaml", 1, 1),
    "LPC502": ("LPC502", "LPC502", 1, 1),
    "LPC504": ("LPC504", "LPC504/b.yaml", 3, 3),
}
MADE_IN_TESTS = {"LPC503"}  # an unreadable file cannot be committed (see test_unreadable_file)


def _overrides(target: Path) -> list[str]:
    """A fixture's first line may name overrides: ``# overrides: key=value ...``."""
    if not target.is_file():
        return []
    first = target.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
    return first.removeprefix("# overrides:").split() if first.startswith("# overrides:") else []


def _validate_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict]]:
    code = main(["validate", *args, "--format", "json"])
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return code, json.loads(out.out)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_fixture_reports_its_code_at_the_pinned_position(code: str, capsys, monkeypatch) -> None:
    target, file, line, column = EXPECTED[code]
    monkeypatch.chdir(FIXTURES)
    exit_code, errors = _validate_json([target, *_overrides(FIXTURES / target)], capsys)
    assert exit_code == 1
    assert [e["code"] for e in errors] == [code], errors
    error = errors[0]
    assert (error["file"], error["line"], error["column"]) == (file, line, column)
    assert error["message"]


def test_every_code_has_a_fixture_and_a_description() -> None:
    assert set(EXPECTED) | MADE_IN_TESTS == set(ERROR_CODES)
    assert all(ERROR_CODES[c] for c in ERROR_CODES)


def test_unreadable_file(tmp_path: Path) -> None:
    folder = tmp_path / "spec.yaml"
    folder.mkdir()
    with pytest.raises(SpecErrors) as caught:
        read_spec_file(folder)
    assert [e.code for e in caught.value.errors] == ["LPC503"]


def test_text_output_is_one_line_per_error_then_a_summary(capsys, monkeypatch) -> None:
    monkeypatch.chdir(FIXTURES)
    assert main(["validate", "LPC101.yaml", "LPC201.yaml"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "LPC101.yaml:4:3: LPC101 pipeline.ownr: unknown key 'ownr' (did you mean 'owner'?)",
        "LPC201.yaml:27:3: LPC201 model.dataset: unknown dataset 'peple' (did you mean 'people'?)",
        "2 errors in 2 files",
    ]


def test_github_annotations(capsys, monkeypatch) -> None:
    monkeypatch.chdir(FIXTURES)
    assert main(["validate", "LPC202.yaml", "--format", "github"]) == 1
    first = capsys.readouterr().out.splitlines()[0]
    assert first == ("::error file=LPC202.yaml,line=29,col=27,title=LPC202::model.features[2]: "
                     "unknown feature 'cty' (did you mean 'city'?)")
