"""``loopc drift REFERENCE CURRENT``: the monitor's drift engine on any two Parquet or CSV datasets.

REFERENCE is a Parquet or CSV file or folder, or a stored reference profile (a model's ``profile.json``).
Both sides are read batch by batch and cast to one declared type per column, as validate casts (a CSV
column read as text, then parsed): the type ``--columns NAME:TYPE`` declares, else the profile's, else the
reference dataset's. Exit codes: 0 no drift, 3 drift, 1 an error (unreadable input, unknown column).
"""

from __future__ import annotations

import argparse
import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from loopc.compiler.errors import LoopcError, UsageError

DRIFT_EXIT = 3
STATISTICS = ("psi", "js", "ks_pvalue", "chi2_pvalue")
TYPES = ("int", "float", "bool", "string", "category", "timestamp", "date")
_NUMBER_TYPE = re.compile(r"(u?int\d+|halffloat|float|double|decimal\d*)\b")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="REFERENCE", help="Parquet or CSV file or folder, or a profile.json")
    parser.add_argument("current", metavar="CURRENT", help="Parquet or CSV file or folder")
    parser.add_argument("--columns", default="",
                        help="comma-separated columns, each NAME or NAME:TYPE (TYPE one of "
                             f"{', '.join(TYPES)}; default: the columns both have, typed as the reference)")
    parser.add_argument("--input-format", choices=("parquet", "csv"), default=None,
                        help="the datasets' format (default: csv when a path ends in .csv, else parquet)")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text", help="the report's format")
    parser.add_argument("--methods", default="psi,ks,chi2", help="comma-separated: psi, ks, chi2, js")
    parser.add_argument("--psi-max", type=float, default=0.2)
    parser.add_argument("--js-max", type=float, default=0.1)
    parser.add_argument("--p-value", type=float, default=0.01)
    parser.add_argument("--min-drifted", type=int, default=1, help="drift when at least this many columns drift")
    parser.add_argument("-o", "--output", default=None, help="write the report to this file instead of stdout")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def declared_columns(text: str) -> dict[str, str | None]:
    """``--columns``: name -> the declared type, or None for a column typed as the reference is."""
    columns: dict[str, str | None] = {}
    for item in _names(text):
        name, _, ctype = item.partition(":")
        if ctype and ctype not in TYPES:
            raise UsageError(f"--columns {item}: unknown type '{ctype}'; use one of {', '.join(TYPES)}")
        columns[name.strip()] = ctype or None
    return columns


def read_as(type_name: str) -> str:
    """The declared type a column is read as, from its type as a profile records it or as a dataset holds it
    (an Arrow type): numbers as float, times as timestamp or date, booleans as bool, anything else as string."""
    if type_name in TYPES:
        return type_name
    if _NUMBER_TYPE.match(type_name):
        return "float"
    if type_name.startswith(("timestamp", "date")):
        return "timestamp" if type_name.startswith("timestamp") else "date"
    return "string"


@dataclass(frozen=True)
class Rows:
    """One side's rows: a Parquet or CSV dataset (its ``text`` columns read from CSV as strings), read batch by
    batch."""

    path: str
    fmt: str  # parquet or csv
    dataset: Any
    text: Mapping[str, Any]  # CSV columns read as text -> their null spellings (formats.csv_text_columns)

    def typed(self, types: dict[str, str]) -> Rows:
        """These rows with ``types`` declared: the same dataset for Parquet (whose files carry their types, so its
        footers are not read again), a CSV one opened again with those columns read as text."""
        return self if self.fmt == "parquet" else open_rows(self.path, self.fmt, types)

    @property
    def names(self) -> list[str]:
        """Every column a file of the dataset has (its schema alone is the first file's)."""
        return list(dict.fromkeys([*self.dataset.schema.names, *(n for names in self.file_columns.values()
                                                                   for n in names)]))

    @cached_property
    def file_columns(self) -> dict[str, list[str]]:
        """Each file's columns, as its footer (Parquet) or header (CSV) names them."""
        try:
            return {f.path: f.physical_schema.names for f in self.dataset.get_fragments()}
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise LoopcError(f"cannot read '{self.path}': {exc}") from None

    def require(self, columns: list[str]) -> None:
        """A LoopcError unless every file has ``columns`` (a file lacking one would be read as nulls)."""
        missing = [c for c in columns if c not in self.names]
        if missing:
            raise LoopcError(f"'{self.path}' has no column(s) {', '.join(missing)} "
                             f"(columns: {', '.join(self.names)})")
        for path, names in self.file_columns.items():
            lacking = [c for c in columns if c not in names]
            if lacking:
                raise LoopcError(f"'{path}' lacks column(s) {', '.join(lacking)} that other files of '{self.path}' "
                                 "have; compare files that share the columns, or name the columns with --columns")

    def count(self) -> int:
        try:
            return self.dataset.count_rows()
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise LoopcError(f"cannot read '{self.path}': {exc}") from None

    def batches(self, types: dict[str, str]) -> Iterator[Any]:
        """Record batches of the ``types`` columns, cast to them; LoopcError naming the file and the column
        of a value that cannot be read as declared."""
        from loopc.runtime.data.errors import DataError
        from loopc.runtime.data.formats import cast_declared, scan_batches
        from loopc.runtime.data.rows import batch_rows

        columns = sorted(types)
        try:
            for tagged in scan_batches(self.dataset, columns, batch_rows(8 * max(len(columns), 1))):
                batch, bad = cast_declared(tagged.record_batch, types, self.text)
                if bad is not None:
                    shown = ", ".join(repr(v) for v in bad.examples)
                    raise LoopcError(f"'{tagged.fragment.path}': column '{bad.column}' has {bad.count} value(s) "
                                     f"that cannot be read as {bad.ctype} (e.g. {shown}); declare another type with "
                                     f"--columns {bad.column}:TYPE")
                yield batch
        except DataError as exc:
            raise LoopcError(f"cannot read '{self.path}': {exc} (declare a column's type with --columns NAME:TYPE "
                             "to have every CSV value parsed as it)") from None


def open_rows(path: str, input_format: str | None, types: dict[str, str]) -> Rows:
    """The dataset at ``path`` (a file or a folder with hive partitions); a CSV's ``types`` columns read as text."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    from loopc.runtime.data.errors import DataError, reason
    from loopc.runtime.data.formats import common_format, csv_text_columns, dataset_format

    try:
        fmt = common_format({"format": input_format}, [path], default="parquet")
        text = csv_text_columns(types) if fmt == "csv" else {}
        return Rows(path, fmt, ds.dataset(path, format=dataset_format(fmt, {}, text), partitioning="hive"), text)
    except (OSError, ValueError, pa.ArrowInvalid, DataError) as exc:
        folder = Path(path).is_dir() and input_format is None
        hint = " (a folder of CSV files needs --input-format csv)" if folder and "parquet" in str(exc).lower() else ""
        raise LoopcError(f"cannot read '{path}': {reason(exc)}{hint}") from None


def stored_profile(path: str) -> dict[str, Any]:
    """The reference profile stored at ``path`` (a model's ``profile.json``)."""
    try:
        profile = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LoopcError(f"cannot read the reference profile '{path}': {exc}") from None
    if not isinstance(profile, dict) or not isinstance(profile.get("columns"), dict):
        raise LoopcError(f"'{path}' is not a loopc reference profile (no 'columns')")
    return profile


def reference_profile(rows: Rows, types: dict[str, str]) -> dict[str, Any]:
    """The profile of the ``types`` columns of ``rows``, sketched batch by batch in two passes as training does."""
    from loopc.runtime.monitor.profile import ProfileError, ProfileSketch, complete_profile

    count = rows.count()
    if not count:
        raise LoopcError(f"'{rows.path}' holds no rows to compare with")
    sketch = ProfileSketch({name: {"type": ctype} for name, ctype in types.items()}, count)
    try:
        for batch in rows.batches(types):
            sketch.observe(batch)
        for batch in rows.batches({name: types[name] for name in sketch.numeric}):
            sketch.count(batch)
    except ProfileError as exc:
        raise LoopcError(str(exc)) from None
    return complete_profile(sketch.sketches(), count)


def _reference(args: argparse.Namespace, declared: dict[str, str | None],
               current: Rows) -> tuple[dict[str, Any], dict[str, str]]:
    """The reference profile and the declared type of each compared column."""
    if args.reference.endswith(".json"):
        stored = stored_profile(args.reference)
        columns = _compared(declared, current, list(stored["columns"]))
        unknown = [c for c in columns if c not in stored["columns"]]
        if unknown:
            raise LoopcError(f"the reference profile '{args.reference}' has no column(s) {', '.join(unknown)} "
                             f"(profiled: {', '.join(sorted(stored['columns']))})")
        return stored, {c: declared.get(c) or read_as(str(stored["columns"][c].get("type", ""))) for c in columns}
    rows = open_rows(args.reference, args.input_format, {n: t for n, t in declared.items() if t})
    columns = _compared(declared, current, rows.names)
    rows.require(columns)
    types = {c: declared.get(c) or read_as(str(rows.dataset.schema.field(c).type)) for c in columns}
    return reference_profile(rows.typed(types), types), types


def _compared(declared: dict[str, str | None], current: Rows, reference: list[str]) -> list[str]:
    """The columns ``--columns`` names, else those both sides have."""
    columns = list(declared) or sorted(set(current.names) & set(reference))
    if not columns:
        raise LoopcError("the two datasets share no column; name some with --columns")
    return columns


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
    from loopc.runtime.monitor.live import LiveColumns
    from loopc.runtime.monitor.verdict import MonitorError, drift_report, report_columns

    declared = declared_columns(args.columns)
    if args.current.endswith(".json"):
        raise LoopcError(f"'{args.current}': CURRENT is the rows to compare (Parquet or CSV); a profile.json can "
                         "only be the REFERENCE")
    current = open_rows(args.current, args.input_format, {})
    profile, types = _reference(args, declared, current)
    current = current.typed(types)
    current.require(list(types))
    config = {"columns": list(types), "methods": _names(args.methods), "psi_max": args.psi_max, "js_max": args.js_max,
              "p_value": args.p_value, "min_drifted": args.min_drifted}
    try:
        live = LiveColumns(profile, report_columns(profile, config))
        for batch in current.batches(types):
            live.add(batch)
        report = drift_report(profile, live, data_drift=config).to_dict()
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
