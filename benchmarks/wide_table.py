"""Wide-table benchmark: the whole loop, the monitor and batch scoring on a table of many float columns.

Writes ROWS x COLUMNS normal floats, an id and a bool label to Parquet, a pipeline that selects every float
column with the spec's selectors (``columns: {from: ...}``, a feature ``columns: {type: float}``, the monitor's
default columns), then runs ``loopc run``, ``loopc run --monitor`` and ``loopc run --score`` in a fresh project
and prints each step's seconds from its run record, against the read floor of the same file.
What grows with the columns, not the rows (a scan of every column name per column, a grid per column), shows
here and not in benchmarks/data_path.py's 64 columns.

Run: ``python benchmarks/wide_table.py [--rows 20000] [--columns 1000] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

PIPELINE = """loopc: 1
pipeline: {name: wide, owner: bench@example.com, risk_class: minimal}
datasets:
  rows:
    source: {path: data/table.parquet}
    columns:
      from: data/table.parquet
      id: {nullable: false}
      y: {nullable: false}
    split: {method: hash, key: id, train: 0.7, valid: 0.15, test: 0.15}
features:
  every: {columns: {type: float}, transform: standardize}
model:
  name: m
  task: binary_classification
  dataset: rows
  label: y
  features: [every]
  architecture: {kind: mlp, hidden: [32], activation: relu}
  training: {epochs: 2, batch_size: 512, seed: 0}
gate:
  split: test
  thresholds: [{metric: auc, min: 0.5}]
  no_champion: promote
monitors:
  drift:
    source: {path: incoming/table.parquet}
    schedule: "0 * * * *"
    data_drift: {}
    prediction_drift: {method: psi, max: 0.25}
scoring:
  source: {path: incoming/table.parquet}
  output: predictions
  keys: [id]
"""


def write_table(root: Path, rows: int, columns: int) -> Path:
    """The table (and a quarter of it as the monitor's and the scorer's incoming rows); its path."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(rows, columns))
    table = pa.table({"id": pa.array([f"r{i}" for i in range(rows)]),
                      **{f"f{j:05d}": pa.array(values[:, j]) for j in range(columns)},
                      "y": pa.array(values[:, :5].sum(axis=1) + rng.normal(size=rows) > 0)})
    for folder in ("data", "incoming"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    pq.write_table(table, root / "data" / "table.parquet")
    pq.write_table(table.slice(0, max(rows // 4, 1)), root / "incoming" / "table.parquet")
    (root / "pipeline.yaml").write_text(PIPELINE, encoding="utf-8")
    return root / "data" / "table.parquet"


def read_floor(path: Path, repeat: int = 3) -> float:
    """Seconds a fresh process takes to import pyarrow and read the file, best of ``repeat`` (the page cache warmed
    by one read before), as benchmarks/data_path.py's floor counts the process too."""
    code = ("import sys, time; t = time.perf_counter(); import pyarrow.parquet as pq; pq.read_table(sys.argv[1]); "
            "print(time.perf_counter() - t)")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)
    return min(float(subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                                    text=True).stdout.split()[-1]) for _ in range(repeat))


def run(root: Path, *extra: str) -> tuple[float, dict[str, float]]:
    """(wall seconds, each step's seconds from its record) of ``loopc run pipeline.yaml EXTRA``."""
    loopc = Path(sys.executable).with_name("loopc")
    before = set((root / ".loopc" / "runs").glob("*")) if (root / ".loopc" / "runs").exists() else set()
    started = time.perf_counter()
    done = subprocess.run([str(loopc), "run", "pipeline.yaml", *extra], cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 3):  # 3: a monitor's breach
        sys.exit(f"loopc run {' '.join(extra)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    [folder] = set((root / ".loopc" / "runs").glob("*")) - before
    steps = {}
    for record in sorted(folder.glob("*.json")):
        data = json.loads(record.read_text(encoding="utf-8"))
        if "seconds" in data and "step" in data:
            steps[data["step"]] = data["seconds"]
    return wall, steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--columns", type=int, default=1000)
    parser.add_argument("--keep", type=Path, default=None, help="project folder to use and keep (default: temporary)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        path = write_table(root, args.rows, args.columns)
        floor = read_floor(path)
        print(f"{platform.node() or 'machine'} ({os.cpu_count()} cores, {platform.machine()}): {args.rows:,} rows x "
              f"{args.columns:,} floats, {path.stat().st_size / 1e6:.0f} MB; read floor {floor:.2f} s")
        for extra in ((), ("--monitor",), ("--score",)):
            wall, steps = run(root, *extra)
            print(f"loopc run {' '.join(extra) or '(the loop)'}: {wall:.1f} s")
            for step, seconds in steps.items():
                print(f"  {step:<16} {seconds:7.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
