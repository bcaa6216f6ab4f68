"""`loopc drift REFERENCE CURRENT`: the monitor's drift engine on two Parquet datasets or a stored profile;
exit 0 no drift, 3 drift, 1 error; the HTML report escapes every value (checked with an HTML parser)."""

from __future__ import annotations

import importlib.util
import json
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from loopc.compiler.cli.main import main as loopc
from loopc.runtime.monitor.profile import build_profile

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"
NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]
HOSTILE = "<script>alert(1)</script>"


def make_table(batch: int, drifted: bool):
    spec = importlib.util.spec_from_file_location("churn_generate", EXAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.make_table(3000, 42, batch, drifted).select([*NUMERIC, "contract"])
    return table.rename_columns([*NUMERIC, HOSTILE])  # a column name that is markup


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift")
    for name, batch, drifted in (("reference", 0, False), ("calm", 7, False), ("drifted", 1, True)):
        pq.write_table(make_table(batch, drifted), folder / f"{name}.parquet")
    return folder


def test_same_distribution_exits_0_and_shifted_exits_3(data, capsys):
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "calm.parquet")]) == 0
    assert "no breach" in capsys.readouterr().out
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["breach"] and "monthly_charges" in report["drifted"]
    assert set(report["columns"]) == {*NUMERIC, HOSTILE}


def test_columns_limit_what_is_compared(data, capsys):
    code = loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--columns", "support_calls",
                  "--format", "json", "--p-value", "1e-300", "--psi-max", "10"])
    report = json.loads(capsys.readouterr().out)
    assert list(report["columns"]) == ["support_calls"] and code == 0


def test_a_stored_profile_gives_the_parquet_reference_verdict(data, tmp_path, capsys):
    table = pq.read_table(data / "reference.parquet")
    profile = build_profile(table, {c: {} for c in table.column_names})
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    assert loopc(["drift", str(tmp_path / "profile.json"), str(data / "drifted.parquet"), "--format", "json"]) == 3
    from_profile = json.loads(capsys.readouterr().out)
    loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "json"])
    assert from_profile["drifted"] == json.loads(capsys.readouterr().out)["drifted"]


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_html_report_escapes_names_and_is_well_formed(data, tmp_path):
    out = tmp_path / "report.html"
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "drifted.parquet"), "--format", "html",
                  "-o", str(out)]) == 3
    page = Page()
    page.feed(out.read_text(encoding="utf-8"))
    assert "script" not in page.tags and page.tags.count("tr") == 1 + len(NUMERIC) + 1
    assert HOSTILE in "".join(page.text)


def test_errors_exit_1_naming_the_problem(data, tmp_path, capsys):
    assert loopc(["drift", str(tmp_path / "missing.parquet"), str(data / "calm.parquet")]) == 1
    assert "missing.parquet" in capsys.readouterr().err
    assert loopc(["drift", str(data / "reference.parquet"), str(data / "calm.parquet"), "--columns", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("[1]")
    assert loopc(["drift", str(tmp_path / "bad.json"), str(data / "calm.parquet")]) == 1
