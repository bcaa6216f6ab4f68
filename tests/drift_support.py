"""drift_report on whole tables in tests: the rows tallied in one batch, as the monitor tallies each of its batches."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from loopc.runtime.monitor.live import LiveColumns
from loopc.runtime.monitor.verdict import DriftReport, drift_report, report_columns


def table_report(profile: dict[str, Any], table: pa.Table, *args, threads: int | None = None,
                 **options) -> DriftReport:
    """``drift_report`` of ``table``'s rows (the compared columns' counts, tallied in ``threads`` threads)."""
    live = LiveColumns(profile, report_columns(profile, options.get("data_drift")), threads)
    live.add(table)
    return drift_report(profile, live, *args, **options)
