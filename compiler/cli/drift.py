"""``loopc drift REFERENCE CURRENT``: the monitor's drift engine on any two Parquet datasets.

REFERENCE is a Parquet file or folder, or a stored reference profile (a model's ``profile.json``).
Exit codes: 0 no drift, 3 drift, 1 an error (unreadable input, unknown column).
"""

from __future__ import annotations

import argparse
import html
import json
from pathlib import Path
from typing import Any

from loopc.compiler.errors import LoopcError

DRIFT_EXIT = 3
STATISTICS = ("psi", "js", "ks_pvalue", "chi2_pvalue")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REFERENCE", help="Parquet file or folder, or a profile.json")
    parser.add_argument("current", metavar="CURRENT", help="Parquet file or folder")
    parser.add_argument("--columns", default="", help="comma-separated columns (default: those both have)")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--methods", default="psi,ks,chi2", help="comma-separated: psi, ks, chi2, js")
    parser.add_argument("--psi-max", type=float, default=0.2)
    parser.add_argument("--js-max", type=float, default=0.1)
    parser.add_argument("--p-value", type=float, default=0.01)
    parser.add_argument("--min-drifted", type=int, default=1, help="drift when at least this many columns drift")
    parser.add_argument("-o", "--output", default=None, help="write the report to this file instead of stdout")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def _read(path: str, columns: list[str] | None):
    import pyarrow as pa
    import pyarrow.dataset as ds

    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        missing = [c for c in columns or [] if c not in dataset.schema.names]
        if missing:
            raise LoopcError(f"'{path}' has no column(s) {', '.join(missing)} (columns: {', '.join(dataset.schema.names)})")
        return dataset.to_table(columns=columns)
    except (OSError, ValueError, pa.ArrowInvalid) as exc:
        raise LoopcError(f"cannot read Parquet at '{path}': {exc}") from None


def reference_profile(path: str, columns: list[str]) -> dict[str, Any]:
    """The stored profile at ``path`` (a .json file), or the profile of a Parquet dataset's ``columns``."""
    from loopc.runtime.monitor.profile import ProfileError, build_profile

    if path.endswith(".json"):
        try:
            profile = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise LoopcError(f"cannot read the reference profile '{path}': {exc}") from None
        if not isinstance(profile, dict) or not isinstance(profile.get("columns"), dict):
            raise LoopcError(f"'{path}' is not a loopc reference profile (no 'columns')")
        return profile
    try:
        return build_profile(_read(path, columns), {c: {} for c in columns})
    except ProfileError as exc:
        raise LoopcError(str(exc)) from None


def _columns(args: argparse.Namespace, stored: dict[str, Any] | None) -> list[str]:
    import pyarrow.dataset as ds

    if args.columns:
        return _names(args.columns)
    try:
        current = set(ds.dataset(args.current, format="parquet", partitioning="hive").schema.names)
        if stored is not None:
            return sorted(current & set(stored["columns"]))
        return sorted(current & set(ds.dataset(args.reference, format="parquet", partitioning="hive").schema.names))
    except (OSError, ValueError) as exc:
        raise LoopcError(f"cannot read the datasets: {exc}") from None


def text_report(report: dict[str, Any]) -> str:
    lines = [report["summary"], ""]
    for name, stats in report["columns"].items():
        values = ", ".join(f"{k}={stats[k]:.4g}" for k in STATISTICS if isinstance(stats.get(k), (int, float)))
        lines.append(f"{'DRIFT' if stats.get('drifted') else 'ok   '}  {name}: {values}")
    return "\n".join(lines) + "\n"


def html_report(report: dict[str, Any], reference: str, current: str) -> str:
    """A self-contained page; every value from the data is escaped."""
    rows = []
    for name, stats in report["columns"].items():
        cells = "".join(f"<td>{html.escape(format(stats[k], '.4g')) if isinstance(stats.get(k), (int, float)) else ''}</td>"
                        for k in STATISTICS)
        reasons = html.escape("; ".join(stats.get("reasons", [])))
        state = "drift" if stats.get("drifted") else "ok"
        rows.append(f"<tr class=\"{state}\"><td>{html.escape(name)}</td><td>{state}</td>{cells}<td>{reasons}</td></tr>")
    head = "".join(f"<th>{h}</th>" for h in ("column", "verdict", *STATISTICS, "why"))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>loopc drift report</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px}tr.drift{background:#fdd}</style></head>\n"
            f"<body><h1>Drift report</h1><p id=\"summary\">{html.escape(report['summary'])}</p>"
            f"<p>reference: {html.escape(reference)}<br>current: {html.escape(current)}</p>\n"
            f"<table id=\"columns\"><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(rows)
            + "\n</tbody></table></body></html>\n")


def run(args: argparse.Namespace) -> int:
    from loopc.runtime.monitor.verdict import MonitorError, drift_report

    stored = reference_profile(args.reference, []) if args.reference.endswith(".json") else None
    columns = _columns(args, stored)
    if not columns:
        raise LoopcError("the two datasets share no column; name some with --columns")
    profile = stored if stored is not None else reference_profile(args.reference, columns)
    config = {"columns": columns, "methods": _names(args.methods), "psi_max": args.psi_max, "js_max": args.js_max,
              "p_value": args.p_value, "min_drifted": args.min_drifted}
    try:
        report = drift_report(profile, _read(args.current, columns), data_drift=config).to_dict()
    except MonitorError as exc:
        raise LoopcError(str(exc)) from None
    text = {"json": lambda: json.dumps(report, indent=2, sort_keys=True, default=str) + "\n",
            "html": lambda: html_report(report, args.reference, args.current),
            "text": lambda: text_report(report)}[args.format]()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return DRIFT_EXIT if report["breach"] else 0
