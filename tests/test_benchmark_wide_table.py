"""benchmarks/wide_table.py builds a project whose selectors take every float column, and times every step of the
loop, the monitor and the scorer from their run records."""

from __future__ import annotations

import json

from benchmark_support import load_benchmark


def test_the_loop_monitor_and_scorer_run_on_every_float_column_and_each_step_is_timed(tmp_path):
    bench = load_benchmark("wide_table")
    path = bench.write_table(tmp_path, rows=400, columns=12)
    assert 0 < bench.read_floor(path, repeat=1) < 60
    _, steps = bench.run(tmp_path)
    assert set(steps) == {"validate.rows", "split.rows", "features.m", "train.m", "evaluate.m", "gate.m",
                          "register.m", "shadow.m", "promote.m"}
    assert all(seconds >= 0 for seconds in steps.values())
    features = next((tmp_path / ".loopc" / "runs").glob("*/features.m.json"))
    assert json.loads(features.read_text(encoding="utf-8"))["outputs"]["features"] == 12  # every float column
    assert set(bench.run(tmp_path, "--monitor")[1]) == {"monitor.drift"}
    assert set(bench.run(tmp_path, "--score")[1]) == {"score.m"}
