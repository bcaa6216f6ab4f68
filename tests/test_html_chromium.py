"""The HTML pages loopc writes, opened in headless Chromium (Debian's; ci/chromium-up.sh): `loopc drift
--format html` and the monitor's run report render their tables and charts with the report's values,
and the page writes nothing to the console (no script runs, markup in the data stays text).

Without chromium these tests skip with the reason; with LOOPC_REQUIRE_ENGINES=1 (CI) they fail."""

from __future__ import annotations

import html
import json

import pyarrow.parquet as pq
import pytest
import yaml
from chromium_support import render

from loopc.compiler.cli.drift import STATISTICS
from loopc.compiler.cli.main import main as loopc
from tests.test_drift_cli import HOSTILE, make_table
from tests.test_e2e_loop import generate, make_project, run

pytestmark = pytest.mark.browser


def test_the_console_check_sees_errors_and_uncaught_exceptions(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><p id='x'>shown</p>"
                    "<script>console.error('planted'); notAFunction();</script></body></html>")
    rendered = render(chromium, page)
    assert rendered.dom.by_id["x"] == "shown"
    assert any("planted" in m for m in rendered.console)
    assert any("Uncaught ReferenceError" in m for m in rendered.console), rendered.console


@pytest.fixture(scope="module")
def drift_pages(tmp_path_factory):
    folder = tmp_path_factory.mktemp("drift_html")
    for name, batch, drifted in (("reference", 0, False), ("drifted", 1, True)):
        pq.write_table(make_table(batch, drifted), folder / f"{name}.parquet")
    args = ["drift", str(folder / "reference.parquet"), str(folder / "drifted.parquet")]
    assert loopc([*args, "--format", "html", "-o", str(folder / "report.html")]) == 3
    assert loopc([*args, "--format", "json", "-o", str(folder / "report.json")]) == 3
    return folder


def test_drift_report_renders_every_column_its_verdict_and_statistics(chromium, drift_pages):
    report = json.loads((drift_pages / "report.json").read_text())
    rendered = render(chromium, drift_pages / "report.html")
    assert rendered.console == []
    header, *body = rendered.dom.rows
    assert header == ["column", "verdict", *STATISTICS, "why"]
    assert [row[0] for row in body] == list(report["columns"])
    for row, (name, stats) in zip(body, report["columns"].items()):
        assert row[1] == ("drift" if stats["drifted"] else "ok"), (name, row)
        numbers = [format(stats[k], ".4g") if isinstance(stats.get(k), (int, float)) else "" for k in STATISTICS]
        assert row[2:-1] == numbers, (name, row)
        assert row[-1] == "; ".join(stats.get("reasons", []))
    assert {row[0] for row in body if row[1] == "drift"} == set(report["drifted"]) and report["drifted"]
    assert rendered.dom.by_id["summary"] == report["summary"]
    assert HOSTILE in [row[0] for row in body] and "script" not in rendered.dom.tags  # markup stays text


@pytest.mark.slow
@pytest.mark.xdist_group("e2e")
def test_monitor_run_report_renders_the_verdict_and_drift_charts(chromium, tmp_path):
    project = make_project(tmp_path / "churn")
    spec_file = project / "pipeline.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["monitors"]["weekly_drift"]["action"]["on_breach"] = "alert"  # a breach, no retraining run
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    assert run(project, run_id="train").ok
    generate(project, "--batch", "1", "--drifted")
    watched = run(project, monitor=True, run_id="watch")
    record = watched.records["monitor.weekly_drift"]
    details = json.loads((project / ".loopc" / record["artifact"] / "drift.json").read_text())
    assert details["breach"]

    rendered = render(chromium, project / ".loopc" / "runs" / "watch" / "report.html")
    assert rendered.console == []
    assert html.escape(details["summary"], quote=False) in rendered.html  # the DOM serializes '>' as &gt;
    assert "script" not in rendered.dom.tags
    psi = {column: stats["psi"] for column, stats in details["columns"].items() if stats.get("psi") is not None}
    assert psi and details["limits"]["psi"] is not None
    for column, value in psi.items():
        assert f">{format(value, '.4g')}<" in rendered.html, column
    assert rendered.dom.tags.get("rect", 0) >= len(psi) and rendered.dom.tags.get("line", 0) >= 1
