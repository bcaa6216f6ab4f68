"""Schema enforcement, dataset checks and the validation report that stops a run before training."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime import units
from loopc.runtime.data import expressions
from loopc.runtime.data.casting import MAX_EXAMPLES, Violation, cast_column, examples, jsonable, one_array
from loopc.runtime.data.errors import DataError
from loopc.runtime.data.snapshot import SourceTable, read_snapshot, take_snapshot
from loopc.runtime.data.split import stable_hash64

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


@dataclass
class _Tally:
    """Rows that broke one rule so far: how many, and the first examples (distinct values, or not)."""

    distinct: bool = False
    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, values: pa.Array, mask: np.ndarray) -> None:
        count = int(np.count_nonzero(mask))  # sum() widens each bool to an integer: several times slower
        if not count:
            return
        self.count += count
        if len(self.examples) < MAX_EXAMPLES:  # a batch's first examples; the earlier batches' come first
            fresh = [v for v in examples(values, mask, self.distinct) if not (self.distinct and v in self.examples)]
            self.examples.extend(fresh[: MAX_EXAMPLES - len(self.examples)])

    def add_rows(self, mask: np.ndarray, offset: int) -> None:
        """Rows with no value to show (nulls): the examples are the row numbers."""
        rows = np.flatnonzero(mask)
        self.count += len(rows)
        self.examples.extend((rows[: MAX_EXAMPLES - len(self.examples)] + offset).tolist())

    def violation(self, dataset: str, column: str, rule: str, message: str) -> Violation | None:
        if not self.count:
            return None
        return Violation(dataset, column, rule, self.count, self.examples, f"{self.count} row(s) {message}")


def _null_violation(dataset: str, column: str, nulls: _Tally) -> Violation | None:
    """Nulls have no value to show: the examples are row numbers."""
    if not nulls.count:
        return None
    where = ", ".join(str(r) for r in nulls.examples) + (", ..." if nulls.count > MAX_EXAMPLES else "")
    message = f"{nulls.count} row(s) are null but the column is not nullable (rows {where})"
    return Violation(dataset, column, "nullable", nulls.count, [f"row {r}" for r in nulls.examples], message)


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


def _value_keys(cast: pa.Array) -> np.ndarray:
    """uint64 per row, equal for equal values: integers and times themselves, float bits (-0.0 as 0.0),
    a 64-bit hash of text. Different values may share a key (text); nulls get 0."""
    if pa.types.is_string(cast.type):
        return stable_hash64(cast)
    if pa.types.is_floating(cast.type):
        return (pc.fill_null(cast, 0.0).to_numpy(zero_copy_only=False) + 0.0).view(np.uint64)
    if pa.types.is_date32(cast.type):
        cast = cast.view(pa.int32())
    elif not pa.types.is_integer(cast.type):
        cast = pc.cast(cast, pa.int64())  # bool, timestamp
    return pc.fill_null(pc.cast(cast, pa.int64()), 0).to_numpy(zero_copy_only=False).view(np.uint64)


class _Repeats:
    """A unique column's values seen so far, kept as 8-byte keys (plus a validity byte) per row.

    Rows whose key repeats are candidates; ``tally`` reads only those rows' values again and
    compares the values themselves, so a hash collision never reports a duplicate.
    """

    def __init__(self):
        self.keys: list[np.ndarray] = []
        self.valid: list[np.ndarray] = []

    def add(self, cast: pa.Array) -> None:
        self.keys.append(_value_keys(cast))
        self.valid.append(np.asarray(cast.is_valid().to_numpy(zero_copy_only=False), dtype=bool))

    def tally(self, batches: Iterable[pa.Array]) -> _Tally:
        """The repeated rows, given the column's cast values again in row order (``batches``)."""
        found = _Tally(distinct=True)
        if not self.keys:
            return found
        keys, valid = np.concatenate(self.keys), np.concatenate(self.valid)
        self.keys = self.valid = []
        ordered = np.sort(keys[valid])
        repeated = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
        candidates = valid & np.isin(keys, repeated) if len(repeated) else np.zeros(0, bool)
        if not candidates.any():
            return found
        picked, offset = [], 0
        for batch in batches:
            picked.append(batch.filter(pa.array(candidates[offset:offset + len(batch)])))
            offset += len(batch)
        values = pa.concat_arrays(picked)
        found.add(values, _duplicate_mask(values))
        return found


class ColumnRules:
    """Every rule of one declared column, checked batch by batch in row order.

    ``update`` casts a batch of the raw column (as read) and counts what it breaks;
    ``violations`` then lists what ``enforce_schema`` reports for the whole column. A unique
    column keeps 9 bytes a row (see ``_Repeats``); every other rule keeps a count and examples.
    """

    def __init__(self, dataset: str, name: str, spec: dict):
        self.dataset, self.name, self.spec, self.found_type = dataset, name, spec, None
        self.bad, self.nulls = _Tally(distinct=True), _Tally()
        self.outside, self.not_allowed = _Tally(), _Tally(distinct=True)
        self.repeats = _Repeats() if spec.get("unique") else None
        self.rows = 0

    def update(self, raw: pa.Array, absent: np.ndarray | None = None) -> pa.Array:
        """The batch cast to the declared type; ``absent`` rows (from files without the column)
        are reported by ``missing_from_some`` rather than as nulls."""
        spec, ctype = self.spec, self.spec["type"]
        raw = one_array(raw)  # a single chunk as it is: combine_chunks would copy it
        cast, bad = cast_column(raw, ctype)
        self.found_type = self.found_type or (raw.type if bad.any() else None)
        self.bad.add(raw, bad)
        if not spec.get("nullable", True) and cast.null_count:
            nulls = _null_mask(cast, bad)
            self.nulls.add_rows(nulls if absent is None else nulls & ~absent, self.rows)
        if ctype in ("int", "float") and (spec.get("min") is not None or spec.get("max") is not None):
            self.outside.add(cast, _range_mask(cast, spec))
        if spec.get("allowed") is not None:
            self.not_allowed.add(cast, _allowed_mask(cast, spec["allowed"], ctype))
        if self.repeats is not None:
            self.repeats.add(cast)
        self.rows += len(raw)
        return cast

    def violations(self, reread: Callable[[], Iterable[pa.Array]] = lambda: ()) -> list[Violation]:
        """What the column broke; ``reread`` gives its cast values again (only a unique column asks)."""
        name, spec, ctype = self.name, self.spec, self.spec["type"]
        found = [self.bad.violation(self.dataset, name, "type", f"cannot be read as {ctype} (found {self.found_type})"),
                 _null_violation(self.dataset, name, self.nulls)]
        low, high = spec.get("min"), spec.get("max")
        bounds = f"{'(-inf' if low is None else f'[{low}'}, {'inf)' if high is None else f'{high}]'}"
        found.append(self.outside.violation(self.dataset, name, "range", f"fall outside {bounds}"))
        found.append(self.not_allowed.violation(self.dataset, name, "allowed",
                                                f"hold values not in allowed {spec.get('allowed')}"))
        if self.repeats is not None:
            found.append(self.repeats.tally(reread()).violation(self.dataset, name, "unique",
                                                                "repeat a value of a unique column"))
        return [v for v in found if v is not None]


def _listing(paths: list[str]) -> str:
    return ", ".join(paths[:MAX_FILES]) + (f" and {len(paths) - MAX_FILES} more" if len(paths) > MAX_FILES else "")


def missing_everywhere(dataset: str, name: str, spec: dict, present: list[str], rows: int,
                       paths: list[str] | None = None) -> Violation:
    """A declared column no file has (``present``: the columns the files have, ``paths``: the files)."""
    where = f" from every file ({_listing(paths)})" if paths else ""
    message = f"column is missing{where} (expected {spec['type']}); present: {', '.join(present)}"
    return Violation(dataset, name, "missing_column", rows, [], message + _spelling_hint(name, present)
                     + _delimiter_hint(present))


def _spelling_hint(name: str, present: list[str]) -> str:
    """A fix when a present column differs from the declared name only in case or surrounding spaces."""
    alike = [p for p in present if p != name and p.strip().casefold() == name.strip().casefold()]
    return f"; {alike[0]!r} is present: names are matched exactly, declare the column as {alike[0]!r}" if alike else ""


def _delimiter_hint(present: list[str]) -> str:
    """A fix when the files' one column is a header of several names joined by another delimiter than the
    CSV reader's: ``id;a;b`` read with commas."""
    if len(present) != 1:
        return ""
    for delimiter in (";", "\t", "|"):
        if delimiter in present[0]:
            return (f"; the one column present looks like a header of fields separated by {delimiter!r}: set the "
                    f"source's options: {{delimiter: {delimiter!r}}}")
    return ""


def missing_from_some(dataset: str, name: str, spec: dict, rows: int, paths: list[str], files: int) -> Violation:
    """A column some files (``paths``, of ``files``) lack: an error when it is not nullable, else a
    warning (their ``rows`` read as null)."""
    nullable = spec.get("nullable", True)
    message = (f"column is missing from {len(paths)} of {files} file(s): {_listing(paths)}; their "
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
            paths = [p.path for p in files.parts] if files else None
            violations.append(missing_everywhere(dataset, name, spec, table.column_names, table.num_rows, paths))
            continue
        absent, paths = files.rows_lacking(name) if files else (None, [])
        if paths:
            violations.append(missing_from_some(dataset, name, spec, int(absent.sum()), paths, len(files.parts)))
        rules = ColumnRules(dataset, name, spec)
        cast = rules.update(table.column(name), absent)
        violations.extend(rules.violations(lambda: [cast]))
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


class _Check:
    """One check, fed the table batch by batch in row order (``update``), then judged (``result``).

    ``names`` are the columns of the whole table; a batch holds at least the ones the check reads.
    """

    def __init__(self, check: dict, names: list[str], now: dt.datetime):
        self.check, self.names, self.now, self.rows = check, list(names), now, 0

    def update(self, table: pa.Table) -> None:
        self.rows += table.num_rows

    def missing(self, name: str) -> CheckResult | None:
        """The failed result of a check whose column the table lacks, else None."""
        column = self.check["column"]
        if column in self.names:
            return None
        return CheckResult(name, self.check["kind"], False, None, "column present",
                           f"column '{column}' is missing (present: {', '.join(self.names)})", column)


class _RowCount(_Check):
    def result(self) -> CheckResult:
        rows, low, high = self.rows, self.check.get("min"), self.check.get("max")
        passed = (low is None or rows >= low) and (high is None or rows <= high)
        expected = " and ".join(p for p in (low is not None and f">= {low}", high is not None and f"<= {high}") if p)
        return CheckResult("row_count", "row_count", passed, rows, expected, f"{rows} rows, expected {expected}")


class _NullRate(_Check):
    nulls = 0

    def update(self, table: pa.Table) -> None:
        super().update(table)
        if self.check["column"] in self.names:
            values = table.column(self.check["column"])
            self.nulls += values.null_count
            if pa.types.is_floating(values.type):
                self.nulls += int(pc.sum(pc.is_nan(values)).as_py() or 0)

    def result(self) -> CheckResult:
        column, name, limit = self.check["column"], f"null_rate({self.check['column']})", self.check["max"]
        if missing := self.missing(name):
            return missing
        rate = self.nulls / self.rows if self.rows else 0.0
        message = f"{self.nulls} of {self.rows} values null ({rate:.2%}), allowed at most {limit:.2%}"
        return CheckResult(name, "null_rate", rate <= limit, round(rate, 6), f"<= {limit}", message, column,
                           self.nulls)


class _Freshness(_Check):
    newest: float | None = None
    text = False

    def update(self, table: pa.Table) -> None:
        super().update(table)
        column = self.check["column"]
        if column in self.names:
            seconds = table_columns(table, [column])[column]
            self.text = self.text or seconds.dtype == object
            if not self.text and not np.isnan(seconds).all():
                self.newest = max(float(np.nanmax(seconds)), self.newest if self.newest is not None else -np.inf)

    def result(self) -> CheckResult:
        column, name, max_age = self.check["column"], f"freshness({self.check['column']})", self.check["max_age"]
        if missing := self.missing(name):
            return missing
        if self.text or self.newest is None:
            return CheckResult(name, "freshness", False, None, f"age <= {max_age}",
                               f"column '{column}' holds no timestamps", column)
        newest = dt.datetime.fromtimestamp(self.newest, tz=dt.timezone.utc)
        now = self.now if self.now.tzinfo else self.now.replace(tzinfo=dt.timezone.utc)
        age = (now - newest).total_seconds()
        message = f"newest value {newest.isoformat()} is {age / 3600:.1f}h old, allowed {max_age}"
        return CheckResult(name, "freshness", age <= parse_duration(max_age), round(age, 3), f"age <= {max_age}",
                           message, column)


class _Expression(_Check):
    holding = 0
    error: CheckResult | None = None

    def __init__(self, check: dict, names: list[str], now: dt.datetime):
        super().__init__(check, names, now)
        self.sample: list[dict] = []

    def update(self, table: pa.Table) -> None:
        super().update(table)
        expr = self.check["expr"]
        if self.error is not None:
            return
        try:
            used = sorted(expressions.columns_in(expr))
            holds = expressions.evaluate(expr, table_columns(table, used), rows=table.num_rows)
            holds = holds if holds.dtype == bool else expressions.truth(holds)
        except expressions.ExpressionError as error:
            self.error = CheckResult(f"expression({self.check['name']})", "expression", False, None, expr,
                                     f"cannot evaluate '{expr}': {error}")
            return
        self.holding += int(holds.sum())
        if len(self.sample) < MAX_EXAMPLES and not holds.all():
            rows = table.select(used).filter(pa.array(~holds)).slice(0, MAX_EXAMPLES - len(self.sample))
            self.sample.extend({k: jsonable(v) for k, v in row.items()} for row in rows.to_pylist())

    def result(self) -> CheckResult:
        if self.error is not None:
            return self.error
        name, expr, need = f"expression({self.check['name']})", self.check["expr"], self.check.get("min_fraction", 1.0)
        fraction = self.holding / self.rows if self.rows else 1.0
        message = f"'{expr}' holds for {fraction:.2%} of rows, required {need:.2%}"
        return CheckResult(name, "expression", fraction >= need, round(fraction, 6), f">= {need} of rows", message,
                           None, self.rows - self.holding, self.sample)


_CHECKS = {"row_count": _RowCount, "null_rate": _NullRate, "freshness": _Freshness, "expression": _Expression}


def check_runners(checks: list[dict], names: list[str], now: dt.datetime) -> list[_Check]:
    """One runner per check dict (``kind`` row_count, null_rate, freshness or expression) on a table
    with columns ``names``: feed it the table's batches with ``update``, then read ``result()``."""
    unknown = [c.get("kind") for c in checks if c.get("kind") not in _CHECKS]
    if unknown:
        raise DataError(f"unknown check kind(s) {unknown}; known: {sorted(_CHECKS)}")
    return [_CHECKS[check["kind"]](check, names, now) for check in checks]


def run_checks(table: pa.Table, checks: list[dict], now: dt.datetime) -> list[CheckResult]:
    """Run each check dict on the whole ``table``."""
    runners = check_runners(checks, table.column_names, now)
    for runner in runners:
        runner.update(table)
    return [runner.result() for runner in runners]


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
