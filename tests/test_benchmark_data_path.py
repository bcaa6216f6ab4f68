"""benchmarks/data_path.py's table: normal columns, or (``--skewed``) lognormal ones with the same labels."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
from benchmark_support import load_benchmark


def test_the_skewed_table_is_the_normal_one_exponentiated_with_the_same_labels(tmp_path):
    bench = load_benchmark("data_path")
    bench.write_table(tmp_path / "normal.parquet", 1200, 5, chunk=500)
    bench.write_table(tmp_path / "skewed.parquet", 1200, 5, chunk=500, skewed=True)
    normal, skewed = pq.read_table(tmp_path / "normal.parquet"), pq.read_table(tmp_path / "skewed.parquet")
    assert normal.column_names == skewed.column_names == ["id", "f_00", "f_01", "f_02", "f_03", "f_04", "label"]
    assert normal.column("label").equals(skewed.column("label")) and normal.column("id").equals(skewed.column("id"))
    for name in ("f_00", "f_04"):
        np.testing.assert_array_equal(skewed.column(name).to_numpy(), np.exp(normal.column(name).to_numpy()))
    assert 0.3 < np.mean(normal.column("label").to_numpy()) < 0.7
