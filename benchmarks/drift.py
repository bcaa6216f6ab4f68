"""Drift monitoring benchmark: 1M vs 1M rows x 20 columns against the Parquet read floor.

Writes a reference and a current table (15 numeric, 5 categorical columns; the current one
shifted in a few columns) to Parquet in a temporary directory, then times:

* floor: pyarrow reading both files (warm page cache), the ROADMAP's yardstick;
* loopc: ``build_profile`` on the reference (training time) and ``drift_report`` on the
  current rows (the verdict), separately and end to end from the files;
* baseline: plain numpy/scipy on raw rows, per column: ``ks_2samp`` + PSI for numeric,
  ``chisquare`` + PSI for categorical (the usual hand-written monitor).

Evidently is not installed here (the ROADMAP measured its default drift preset at 134.5 s).
Run: ``python benchmarks/drift.py [--rows N] [--repeat R] [--threads T]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

from loopc.runtime.monitor.live import LiveColumns
from loopc.runtime.monitor.profile import build_profile
from loopc.runtime.monitor.verdict import drift_report, report_columns

NUMERIC, CATEGORICAL = 15, 5
DATA_DRIFT = {"columns": None, "methods": ["psi", "ks", "chi2", "js"], "psi_max": 0.2, "js_max": 0.1,
              "p_value": 0.01, "min_drifted": 2}  # fmt: skip


def make_table(rows: int, seed: int, shifted: bool) -> pa.Table:
    """15 numeric columns of assorted shapes and 5 string columns; ``shifted`` moves 3 of them."""
    rng = np.random.default_rng(seed)
    columns = {}
    for i in range(NUMERIC):
        shift = 0.2 if shifted and i < 2 else 0.0
        kind = i % 3
        if kind == 0:
            values = rng.normal(shift, 1.0, rows)
        elif kind == 1:
            values = rng.lognormal(1.0 + shift, 0.6, rows)
        else:
            values = rng.poisson(4.0 + 10 * shift, rows).astype(np.float64)
        columns[f"num_{i:02d}"] = values
    for j in range(CATEGORICAL):
        size = (5, 12, 30, 3, 50)[j]
        weights = np.random.default_rng(100 + j).dirichlet(np.ones(size))  # the same in both tables
        weights = np.ones(size) / size if shifted and j == 0 else weights
        vocabulary = np.array([f"cat{j}_{k}" for k in range(size)])
        columns[f"cat_{j}"] = vocabulary[rng.choice(size, rows, p=weights)]
    return pa.table(columns)


def column_specs(table: pa.Table) -> dict[str, dict]:
    return {name: {"type": "float" if name.startswith("num") else "category"} for name in table.column_names}


CPU: dict[str, float] = {}  # smallest process CPU time (all threads) per figure: robust to a busy machine


def best_of(repeat: int, fn, name: str = "") -> tuple[float, object]:
    """Smallest wall time of ``repeat`` runs and the last result; CPU[name] gets the smallest CPU time."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - start)
        CPU[name] = min(CPU.get(name, float("inf")), time.process_time() - cpu)
    return best, result


def baseline(reference: pa.Table, current: pa.Table) -> list[str]:
    """Plain numpy/scipy drift on raw rows, one column at a time; returns the drifted columns."""
    drifted = []
    for name in reference.column_names:
        ref, cur = reference.column(name).to_numpy(), current.column(name).to_numpy()
        if name.startswith("num"):
            p_value = stats.ks_2samp(ref, cur).pvalue
            edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11)[1:-1]))
            expected = np.bincount(np.searchsorted(edges, ref, side="left"), minlength=len(edges) + 1) / len(ref)
            actual = np.bincount(np.searchsorted(edges, cur, side="left"), minlength=len(edges) + 1) / len(cur)
        else:
            keys, ref_counts = np.unique(ref.astype(str), return_counts=True)  # object arrays: 10x slower
            cur_keys, cur_counts = np.unique(cur.astype(str), return_counts=True)
            aligned = np.array([dict(zip(cur_keys, cur_counts)).get(k, 0) for k in keys], dtype=np.float64)
            expected, actual = ref_counts / ref_counts.sum(), aligned / max(aligned.sum(), 1)
            p_value = stats.chisquare(aligned, expected * aligned.sum()).pvalue
        e, a = np.maximum(expected, 1e-4), np.maximum(actual, 1e-4)
        if p_value < 0.01 or np.sum((a - e) * np.log(a / e)) > 0.2:
            drifted.append(name)
    return drifted


def tallied_report(profile: dict, table: pa.Table, threads: int | None):
    """drift_report of ``table``'s rows tallied in one batch (the monitor tallies each of its batches so)."""
    live = LiveColumns(profile, report_columns(profile, DATA_DRIFT), threads)
    live.add(table)
    return drift_report(profile, live, data_drift=DATA_DRIFT)


def run(rows: int, repeat: int, threads: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        ref_path, cur_path = Path(tmp) / "reference.parquet", Path(tmp) / "current.parquet"
        pq.write_table(make_table(rows, 1, False), ref_path)
        pq.write_table(make_table(rows, 2, True), cur_path)
        read_both = lambda: (pq.read_table(ref_path), pq.read_table(cur_path))  # noqa: E731
        read_both()  # warm the page cache
        floor, (reference, current) = best_of(repeat, read_both, "floor")
        specs = column_specs(reference)
        t_profile, profile = best_of(repeat, lambda: build_profile(reference, specs, None), "profile")
        profile = json.loads(json.dumps(profile))  # as stored
        report_fn = lambda: tallied_report(profile, current, threads)  # noqa: E731
        t_report, report = best_of(repeat, report_fn, "report")
        verdict_fn = lambda: tallied_report(profile, pq.read_table(cur_path), threads)  # noqa: E731
        t_verdict, _ = best_of(repeat, verdict_fn, "verdict")
        everything = lambda: tallied_report(  # noqa: E731
            build_profile(pq.read_table(ref_path), specs, None), pq.read_table(cur_path), threads,
        )  # fmt: skip
        t_all, _ = best_of(repeat, everything, "all")
        t_base, base_drifted = best_of(1, lambda: baseline(reference, current), "baseline")
    return {
        "floor": floor, "profile": t_profile, "report": t_report, "verdict": t_verdict, "all": t_all,
        "baseline": t_base, "drifted": report.drifted, "baseline_drifted": base_drifted,
        "profile_kb": len(json.dumps(profile)) / 1024,
    }  # fmt: skip


def render(figures: dict[str, float], rows: int) -> str:
    floor = figures["floor"]
    lines = [
        f"{rows:,} vs {rows:,} rows x {NUMERIC + CATEGORICAL} columns ({NUMERIC} numeric, {CATEGORICAL} categorical)",
        "",
        "| what | wall s | x read floor | CPU s |",
        "|---|---|---|---|",
    ]
    labels = [
        ("floor", "pyarrow read of both Parquet files (floor)"),
        ("profile", "loopc build_profile, reference in memory (training time)"),
        ("report", "loopc drift_report, current in memory"),
        ("verdict", "loopc verdict: read current file + drift_report (stored profile)"),
        ("all", "loopc all: read both + build_profile + drift_report"),
        ("baseline", "numpy/scipy per column (ks_2samp, chisquare, PSI), in memory"),
    ]
    lines += [f"| {label} | {figures[key]:.3f} | {figures[key] / floor:.1f} | {CPU[key]:.3f} |" for key, label in labels]
    lines += ["", f"drifted columns: loopc {', '.join(figures['drifted'])}; baseline {', '.join(figures['baseline_drifted'])}",
              f"reference profile: {figures['profile_kb']:.0f} KiB of JSON"]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="column threads (default: min(4, cores))")
    args = parser.parse_args()
    figures = run(args.rows, args.repeat, args.threads)
    print(f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}, pyarrow {pa.__version__}")  # fmt: skip
    print(render(figures, args.rows))


if __name__ == "__main__":
    main()
