"""Schema enforcement, dataset checks and the validation report that stops a run before training."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime import units
from loopc.runtime.data import expressions
from loopc.runtime.data.casting import Violation, cast_column, examples, jsonable
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import SourceTable, read_snapshot, take_snapshot

MAX_FILES = 5  # files named in one message


class ValidationFailed(DataError):
    """A dataset broke its schema or a check; ``report`` is the JSON report, the message its text."""

    def __init__(self, report: dict):
        super().__init__(render_report(report))
        self.report = report


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one dataset check."""

    name: str
    kind: str
    passed: bool
    observed: float | int | str | None
    expected: str
    message: str
    column: str | None = None
    count: int = 0
    examples: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------- schema


def _violation(dataset: str, column: str, rule: str, mask: np.ndarray, values: pa.Array, message: str,
               distinct: bool = False) -> Violation | None:
    count = int(mask.sum())
    if not count:
        return None
    sample = examples(values, mask, distinct)
    return Violation(dataset, column, rule, count, sample, f"{count} row(s) {message}")


def _null_violation(dataset: str, column: str, mask: np.ndarray) -> Violation | None:
    """Nulls have no value to show: the examples are row numbers."""
    rows = np.flatnonzero(mask)
    if not len(rows):
        return None
    where = ", ".join(str(r) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
    message = f"{len(rows)} row(s) are null but the column is not nullable (rows {where})"
    return Violation(dataset, column, "nullable", len(rows), [f"row {r}" for r in rows[:5].tolist()], message)


def _null_mask(array: pa.Array, bad: np.ndarray) -> np.ndarray:
    return np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool) & ~bad


def _range_mask(array: pa.Array, spec: dict) -> np.ndarray:
    """Rows outside [min, max]; an infinite value is outside every declared range. Nulls (and NaN,
    which casting turned into null) are left to ``nullable``."""
    values = pc.cast(array, pa.float64()).to_numpy(zero_copy_only=False)
    low = -np.inf if spec.get("min") is None else spec["min"]
    high = np.inf if spec.get("max") is None else spec["max"]
    with np.errstate(invalid="ignore"):
        return ~np.isnan(values) & ((values < low) | (values > high) | np.isinf(values))


def _allowed_mask(array: pa.Array, allowed: list, ctype: str) -> np.ndarray:
    as_text = pa.array([str(v).lower() if isinstance(v, bool) else str(v) for v in allowed], pa.string())
    value_set = pc.drop_null(cast_column(as_text, ctype)[0])  # an allowed value of the wrong type matches nothing
    inside = pc.is_in(array, value_set=value_set)
    return ~np.asarray(pc.fill_null(inside, True).to_numpy(zero_copy_only=False), dtype=bool)


def _duplicate_mask(array: pa.Array) -> np.ndarray:
    """Rows whose (non-null) value also appears in another row; sort-based, fast for unique keys."""
    count = len(array)
    if count < 2:
        return np.zeros(count, bool)
    order = pc.sort_indices(array).to_numpy()
    ordered = array.take(order)
    same = pc.fill_null(pc.equal(ordered.slice(1), ordered.slice(0, count - 1)), False)
    same = np.asarray(same.to_numpy(zero_copy_only=False), dtype=bool)
    in_order = np.zeros(count, bool)
    in_order[1:] |= same
    in_order[:-1] |= same
    mask = np.empty(count, bool)
    mask[order] = in_order
    return mask


def _column_violations(dataset: str, name: str, raw: pa.Array, spec: dict,
                       absent: np.ndarray | None = None) -> tuple[pa.Array, list]:
    """Cast one column and collect every rule it breaks; ``absent`` rows (from files without the
    column) are reported by ``_missing_from_some`` rather than as nulls."""
    ctype = spec["type"]
    raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
    cast, bad = cast_column(raw, ctype)
    found = [_violation(dataset, name, "type", bad, raw, f"cannot be read as {ctype} (found {raw.type})", True)]
    if not spec.get("nullable", True):
        nulls = _null_mask(cast, bad)
        found.append(_null_violation(dataset, name, nulls if absent is None else nulls & ~absent))
    if ctype in ("int", "float") and (spec.get("min") is not None or spec.get("max") is not None):
        low, high = spec.get("min"), spec.get("max")
        bounds = f"{'(-inf' if low is None else f'[{low}'}, {'inf)' if high is None else f'{high}]'}"
        found.append(_violation(dataset, name, "range", _range_mask(cast, spec), cast, f"fall outside {bounds}"))
    if spec.get("allowed") is not None:
        allowed = spec["allowed"]
        found.append(_violation(dataset, name, "allowed", _allowed_mask(cast, allowed, ctype), cast,
                                f"hold values not in allowed {allowed}", True))
    if spec.get("unique"):
        found.append(_violation(dataset, name, "unique", _duplicate_mask(cast), cast,
                                "repeat a value of a unique column", True))
    return cast, [v for v in found if v is not None]


def _listing(paths: list[str]) -> str:
    return ", ".join(paths[:MAX_FILES]) + (f" and {len(paths) - MAX_FILES} more" if len(paths) > MAX_FILES else "")


def missing_everywhere(dataset: str, name: str, spec: dict, table: pa.Table, files: SourceTable | None) -> Violation:
    """A declared column no file has (``table``: the read, or a table with every column name and the row count)."""
    where = f" from every file ({_listing([p.path for p in files.parts])})" if files else ""
    message = f"column is missing{where} (expected {spec['type']}); present: {', '.join(table.column_names)}"
    return Violation(dataset, name, "missing_column", table.num_rows, [], message)


def _missing_from_some(dataset: str, name: str, spec: dict, absent: np.ndarray, paths: list[str],
                       files: SourceTable) -> Violation:
    """A column some files lack: an error when it is not nullable, else a warning (its rows read as null)."""
    nullable = spec.get("nullable", True)
    rows = int(absent.sum())
    message = (f"column is missing from {len(paths)} of {len(files.parts)} file(s): {_listing(paths)}; their "
               f"{rows} row(s) are read as null" + ("" if nullable else " but the column is not nullable"))
    return Violation(dataset, name, "missing_column", rows, paths[:MAX_FILES], message,
                     "warning" if nullable else "error")


def enforce_schema(table: pa.Table, columns: dict, dataset: str = "",
                   files: SourceTable | None = None) -> tuple[pa.Table, list[Violation]]:
    """Cast ``table`` to the declared ``columns`` (Column dicts) and list every violation.

    Declared columns come first in declaration order, extra columns are kept after them
    and reported as warnings. A column that cannot be cast keeps its castable values;
    the uncastable ones become null and are reported once, under rule ``type``. With
    ``files`` (the read that gave ``table``), a column some files lack is reported as
    missing from those files, by name.
    """
    violations, arrays, names = [], [], []
    for name, spec in columns.items():
        if name not in table.column_names:
            violations.append(missing_everywhere(dataset, name, spec, table, files))
            continue
        absent, paths = files.rows_lacking(name) if files else (None, [])
        if paths:
            violations.append(_missing_from_some(dataset, name, spec, absent, paths, files))
        cast, found = _column_violations(dataset, name, table.column(name), spec, absent)
        violations.extend(found)
        arrays.append(cast)
        names.append(name)
    for name in table.column_names:
        if name not in columns:
            violations.append(extra_column(dataset, name))
            arrays.append(table.column(name))
            names.append(name)
    return pa.Table.from_arrays(arrays, names=names), violations


def extra_column(dataset: str, name: str) -> Violation:
    """The warning for a column the schema does not declare."""
    return Violation(dataset, name, "extra_column", 0, [], "column is not declared in the schema; it is kept but "
                     "not checked", "warning")


def check_columns(check: dict) -> list[str]:
    """The columns one check reads ([] for row_count; an expression's columns; [] if it does not parse)."""
    if check.get("kind") == "expression":
        try:
            return sorted(expressions.columns_in(check.get("expr") or ""))
        except expressions.ExpressionError:
            return []
    return [check["column"]] if check.get("column") is not None else []


# --------------------------------------------------------------------------- checks


def table_columns(table: pa.Table, names) -> dict[str, np.ndarray]:
    """Columns as numpy for expressions: numbers/bools/times as float64 (NaN nulls), text as objects."""
    out = {}
    for name in names:
        if name not in table.column_names:
            continue
        column = table.column(name)
        type_ = column.type
        if pa.types.is_dictionary(type_):
            column, type_ = column.cast(type_.value_type), type_.value_type
        if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
            micros = pc.cast(pc.cast(column, pa.timestamp("us")), pa.int64())
            column = pc.divide(pc.cast(micros, pa.float64()), 1e6)
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type) or pa.types.is_boolean(column.type):
            out[name] = pc.cast(column, pa.float64()).to_numpy().astype(np.float64)
        else:
            out[name] = np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return out


def parse_duration(text: str | int) -> int:
    """Seconds in ``90s``, ``15m``, ``2h``, ``1d12h``; a bad duration is a DataError."""
    try:
        return units.parse_duration(text)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def _row_count(table: pa.Table, check: dict, now: dt.datetime) -> CheckResult:
    rows, low, high = table.num_rows, check.get("min"), check.get("max")
    passed = (low is None or rows >= low) and (high is None or rows <= high)
    expected = " and ".join(p for p in (low is not None and f">= {low}", high is not None and f"<= {high}") if p)
    return CheckResult("row_count", "row_count", passed, rows, expected, f"{rows} rows, expected {expected}")


def _missing(check: dict, name: str, table: pa.Table) -> CheckResult:
    column = check["column"]
    return CheckResult(name, check["kind"], False, None, "column present",
                       f"column '{column}' is missing (present: {', '.join(table.column_names)})", column)


def _null_rate(table: pa.Table, check: dict, now: dt.datetime) -> CheckResult:
    column, name = check["column"], f"null_rate({check['column']})"
    if column not in table.column_names:
        return _missing(check, name, table)
    values = table.column(column)
    nulls = values.null_count
    if pa.types.is_floating(values.type):
        nulls += int(pc.sum(pc.is_nan(values)).as_py() or 0)
    rate = nulls / table.num_rows if table.num_rows else 0.0
    passed = rate <= check["max"]
    message = f"{nulls} of {table.num_rows} values null ({rate:.2%}), allowed at most {check['max']:.2%}"
    return CheckResult(name, "null_rate", passed, round(rate, 6), f"<= {check['max']}", message, column, nulls)


def _freshness(table: pa.Table, check: dict, now: dt.datetime) -> CheckResult:
    column, name = check["column"], f"freshness({check['column']})"
    if column not in table.column_names:
        return _missing(check, name, table)
    seconds = table_columns(table, [column])[column]
    if seconds.dtype == object or np.isnan(seconds).all():
        return CheckResult(name, "freshness", False, None, f"age <= {check['max_age']}",
                           f"column '{column}' holds no timestamps", column)
    newest = dt.datetime.fromtimestamp(float(np.nanmax(seconds)), tz=dt.timezone.utc)
    now = now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)
    age = (now - newest).total_seconds()
    passed = age <= parse_duration(check["max_age"])
    message = f"newest value {newest.isoformat()} is {age / 3600:.1f}h old, allowed {check['max_age']}"
    return CheckResult(name, "freshness", passed, round(age, 3), f"age <= {check['max_age']}", message, column)


def _expression(table: pa.Table, check: dict, now: dt.datetime) -> CheckResult:
    name, expr, need = f"expression({check['name']})", check["expr"], check.get("min_fraction", 1.0)
    try:
        used = sorted(expressions.columns_in(expr))
        holds = expressions.evaluate(expr, table_columns(table, used), rows=table.num_rows)
        holds = holds if holds.dtype == bool else expressions.truth(holds)
    except expressions.ExpressionError as error:
        return CheckResult(name, "expression", False, None, expr, f"cannot evaluate '{expr}': {error}")
    fraction = float(holds.mean()) if table.num_rows else 1.0
    failing = ~holds
    sample = table.select(used).filter(pa.array(failing)).slice(0, 5).to_pylist()
    sample = [{k: jsonable(v) for k, v in row.items()} for row in sample]
    message = f"'{expr}' holds for {fraction:.2%} of rows, required {need:.2%}"
    return CheckResult(name, "expression", fraction >= need, round(fraction, 6), f">= {need} of rows", message,
                       None, int(failing.sum()), sample)


_CHECKS = {"row_count": _row_count, "null_rate": _null_rate, "freshness": _freshness, "expression": _expression}


def run_checks(table: pa.Table, checks: list[dict], now: dt.datetime) -> list[CheckResult]:
    """Run each check dict (``kind`` row_count, null_rate, freshness or expression) on ``table``."""
    unknown = [c.get("kind") for c in checks if c.get("kind") not in _CHECKS]
    if unknown:
        raise DataError(f"unknown check kind(s) {unknown}; known: {sorted(_CHECKS)}")
    return [_CHECKS[check["kind"]](table, check, now) for check in checks]


# --------------------------------------------------------------------------- report


def validation_report(dataset_name: str, violations: list[Violation], check_results: list[CheckResult],
                      rows: int | None = None) -> dict:
    """A JSON-able report; ``passed`` is false when any error-level violation or check failed."""
    errors = [v for v in violations if v.severity == "error"]
    failed = [c for c in check_results if not c.passed]
    return {
        "dataset": dataset_name,
        "rows": rows,
        "passed": not errors and not failed,
        "errors": len(errors) + len(failed),
        "warnings": len(violations) - len(errors),
        "violations": [v.to_dict() for v in violations],
        "checks": [c.to_dict() for c in check_results],
    }


def render_report(report: dict) -> str:
    """The report as text a person reads in a terminal or a log."""
    verdict = "passed" if report["passed"] else f"FAILED with {report['errors']} error(s)"
    rows = f" ({report['rows']} rows)" if report.get("rows") is not None else ""
    lines = [f"dataset '{report['dataset']}'{rows}: validation {verdict}"]
    for v in report["violations"]:
        sample = f"; examples: {json.dumps(v['examples'])}" if v["examples"] else ""
        lines.append(f"  {v['severity']}: column '{v['column']}' rule {v['rule']}: {v['message']}{sample}")
    for c in report["checks"]:
        status = "ok" if c["passed"] else "error"
        sample = f"; examples: {json.dumps(c['examples'])}" if c["examples"] else ""
        lines.append(f"  {status}: check {c['name']}: {c['message']}{sample}")
    return "\n".join(lines)


def raise_for_report(report: dict) -> None:
    """Raise ValidationFailed (its message is the rendered report) unless the report passed."""
    if not report["passed"]:
        raise ValidationFailed(report)


def validate_dataset(name: str, dataset: dict, root, now: dt.datetime) -> tuple[pa.Table, dict]:
    """Read a ``Dataset`` dict's source, enforce its schema and run its checks: (typed table, report).

    The caller decides what a failed report means (``raise_for_report`` stops the run).
    """
    files = read_snapshot(take_snapshot(dataset["source"], root))
    table, violations = enforce_schema(files.table, dataset["columns"], name, files)
    results = run_checks(table, dataset.get("checks") or [], now)
    return table, validation_report(name, violations, results, rows=files.table.num_rows)
