"""Live rows tallied against a reference profile batch by batch: exact counts, memory of one batch.

Everything a drift report reads from the live rows adds up over batches: a numeric column's counts
at and below the sketch's points and PSI edges, a categorical column's counts per category, the
null counts and the rows. So a monitor reads its source by record batches and keeps only these.
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from loopc.runtime.data.parallel import map_columns
from loopc.runtime.monitor.drift import CurrentCounts, categorical_drift, numeric_drift_counts
from loopc.runtime.monitor.profile import ProfileError, category_counts, numeric_values


class MonitorError(ValueError):
    """Monitoring cannot run as asked (column missing, unreadable state); the message says how to fix it."""


class LiveColumns:
    """Counts of the live rows of ``names`` (profiled columns), added with :meth:`add` per batch."""

    def __init__(self, profile: dict, names: list[str], threads: int | None = None):
        self.sketches, self.threads, self.rows = profile["columns"], threads, 0
        self.numeric = [n for n in names if self.sketches[n]["kind"] == "numeric"]
        self.categorical = [n for n in names if self.sketches[n]["kind"] == "categorical"]
        self.current = {n: CurrentCounts(self.sketches[n]) for n in self.numeric}
        self.counts = {n: Counter() for n in self.categorical}
        self.nulls = dict.fromkeys(names, 0)

    def add(self, table: pa.Table) -> None:
        """Count one batch of live rows."""
        present = set(table.column_names)
        missing = [n for n in self.nulls if n not in present]
        if missing:
            raise MonitorError(f"columns {', '.join(missing)} of the reference profile are missing from the live rows; "
                            "the monitor source must carry every profiled column")
        try:
            values = [numeric_values(table.column(n), n) for n in self.numeric]
        except ProfileError as error:
            raise MonitorError(f"live rows do not match the reference profile: {error}") from error
        map_columns(lambda item: item[0].add(item[1]),  # each column's own counts: one thread each
                    [(self.current[n], found) for n, (found, _) in zip(self.numeric, values)], self.threads)
        for name, (_, nulls) in zip(self.numeric, values):
            self.nulls[name] += nulls
        for name, (counts, nulls) in zip(self.categorical,
                                         map_columns(lambda n: category_counts(table.column(n)), self.categorical,
                                                     self.threads)):
            self.counts[name].update(counts)
            self.nulls[name] += nulls
        self.rows += table.num_rows

    def statistics(self) -> dict[str, dict]:
        """Per column (sorted) its kind, null rates and drift statistics against the reference."""
        numeric = [self.sketches[n] for n in self.numeric]
        counted = [self.current[n].ecdf() for n in self.numeric]
        results = numeric_drift_counts(numeric, counted, [self.current[n].size for n in self.numeric])
        results += categorical_drift([self.sketches[n] for n in self.categorical],
                                     [dict(self.counts[n]) for n in self.categorical])
        out = {}
        for name, stats in zip(self.numeric + self.categorical, results):
            rate = self.nulls[name] / self.rows if self.rows else 0.0
            out[name] = {"kind": self.sketches[name]["kind"], "null_rate": rate,
                         "ref_null_rate": self.sketches[name]["null_rate"], **stats}
        return {name: out[name] for name in sorted(out)}
