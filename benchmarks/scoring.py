"""Batch scoring benchmark: ``score_to_parquet`` on N rows x F float features against the read-plus-write
floor of the same files in the same run (goal: at most 2x on 2 cores, 4M x 64).

Writes one Parquet input (a string key and F float columns, row groups of 256K rows), fits F standardize
features on a sample with loopc's own fitting code, trains nothing (a linear model's params are drawn at
random), exports the bundle with ``write_bundle`` and times, best of R:

- floor: read the key and the F columns batch by batch (pyarrow dataset) and write a prediction-shaped
  Parquet file (key, float32 score, int64 version, UTC timestamp) of the same rows;
- score: ``score_to_parquet`` through the bundle (features, the jax.export'd network, the same writes).

Run: ``python benchmarks/scoring.py [--rows N] [--features F] [--repeat R] [--threads T]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from loopc.runtime.export.bundle import write_bundle
from loopc.runtime.export.bundle_score import load
from loopc.runtime.features.transforms import fit_features
from loopc.runtime.score.batch import BATCH_ROWS, ScoreJob, score_to_parquet
from loopc.runtime.train.checkpoint import save_params


def make_input(path: Path, rows: int, features: int) -> None:
    rng = np.random.default_rng(0)
    schema = pa.schema([("id", pa.string()), *((f"x{i}", pa.float64()) for i in range(features))])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, BATCH_ROWS):
            n = min(BATCH_ROWS, rows - start)
            columns = [pa.array([f"r{start + i}" for i in range(n)])]
            columns += [pa.array(rng.normal(size=n)) for _ in range(features)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def make_artifact(folder: Path, sample: pa.Table, features: int) -> None:
    specs = {f"f{i}": {"column": f"x{i}", "transforms": ["standardize"]} for i in range(features)}
    fitted = fit_features(sample, specs)
    folder.mkdir()
    (folder / "transform.json").write_text(fitted.to_json())
    rng = np.random.default_rng(1)
    save_params(folder / "params.npz", {"layer_0": {"w": rng.normal(size=(features, 1)).astype(np.float32),
                                                    "b": np.zeros(1, np.float32)}})
    model = {"name": "bench", "task": "binary_classification", "label": "y", "features": list(specs),
             "architecture": {"kind": "linear"}}
    (folder / "model.json").write_text(json.dumps(model))
    (folder / "labels.json").write_text(json.dumps({"task": model["task"], "label": "y", "classes": None}))
    declared = {"id": {"type": "string"}, **{f"x{i}": {"type": "float"} for i in range(features)}}
    (folder / "columns.json").write_text(json.dumps(declared))  # as the features step writes: input is cast


def floor(source: Path, out: Path, features: int) -> float:
    start = time.perf_counter()
    columns = ["id", *(f"x{i}" for i in range(features))]
    schema = pa.schema([("id", pa.string()), ("score", pa.float32()), ("model_version", pa.int64()),
                        ("scored_at", pa.timestamp("us", tz="UTC"))])
    stamp = int(dt.datetime.now(dt.UTC).timestamp() * 1_000_000)
    with pq.ParquetWriter(out, schema) as writer:
        for batch in ds.dataset(source).to_batches(columns=columns, batch_size=BATCH_ROWS):
            n = batch.num_rows
            total = np.zeros(n, np.float32)
            for i in range(features):  # touch every value read, as scoring does
                total += batch.column(i + 1).to_numpy().astype(np.float32)
            writer.write_table(pa.table({"id": batch.column(0), "score": pa.array(total),
                                         "model_version": pa.array(np.ones(n, np.int64)),
                                         "scored_at": pa.array(np.full(n, stamp, np.int64)).cast(schema[3].type)},
                                        schema=schema))
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="Arrow CPU threads (default 2: two cores)")
    args = parser.parse_args()
    pa.set_cpu_count(args.threads)
    pa.set_io_thread_count(args.threads)
    work = Path(tempfile.mkdtemp(prefix="loopc-score-bench-"))
    try:
        source = work / "rows.parquet"
        make_input(source, args.rows, args.features)
        make_artifact(work / "artifact", pq.ParquetFile(source).read_row_group(0), args.features)
        model = load(write_bundle(work / "artifact", work / "bundle", version=1))
        floors, scores = [], []
        for index in range(args.repeat):
            floors.append(floor(source, work / f"floor-{index}.parquet", args.features))
            start = time.perf_counter()
            score_to_parquet(model, ScoreJob(str(source), work / "out", batch_id=f"b{index}"), 1)
            scores.append(time.perf_counter() - start)
        best_floor, best_score = min(floors), min(scores)
        print(json.dumps({"rows": args.rows, "features": args.features, "threads": args.threads,
                          "cpus": os.cpu_count(), "floor_s": round(best_floor, 3), "score_s": round(best_score, 3),
                          "ratio": round(best_score / best_floor, 3),
                          "rows_per_s": round(args.rows / best_score)}, indent=2))
        return 0 if best_score <= 2 * best_floor else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
