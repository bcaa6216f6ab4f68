"""The whole loop on a dataset four times larger than LOOPC_MEMORY_BUDGET: validate -> ... -> promote, a
retrained model gated against the champion and shadowed, and a monitor run, every reader of rows going
batch by batch; what the batched readers give equals the whole-table computation they replaced."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from drift_support import table_report
from rich.console import Console
from test_data_path import COLUMNS, random_table, write_project

from loopc.compiler.cli.run import compile_local
from loopc.runtime.data.checks import enforce_schema
from loopc.runtime.data.rows import batch_rows
from loopc.runtime.data.split_record import SPLITS
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.execution.progress import PlainProgress
from loopc.runtime.gate.shadow import compare_shadow
from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION
from loopc.runtime.steps.common import evaluation, group_columns, load_bundle
from loopc.runtime.steps.split_rows import open_split
from loopc.runtime.steps.split_scores import ChunkedPredictor, score_split

pytestmark = [pytest.mark.slow]

BUDGET, ROWS = "1M", 120_000
MONITOR = """\
    prediction_drift: {method: psi, max: 0.25}
    performance: [{metric: auc, min: 0.0}]
"""
# another seed, and another split of the same rows: the champion's own predictions are of other test rows, so the
# gate scores it batch by batch
RETRAIN = ["model.training.seed=1", "datasets.rows.split.seed=4"]
GATE = {"slices": [{"column": "region", "metric": "accuracy", "min": 0.0, "min_rows": 1}]}


def quiet() -> PlainProgress:
    return PlainProgress(Console(file=io.StringIO()))


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Two training runs (the second gated against the first's champion, then shadowed) and a monitor run,
    under a 1 MB budget, on one Parquet file of one row group (so every batch boundary is the budget's)."""
    root = tmp_path_factory.mktemp("budget")
    table = random_table(ROWS, 7)
    write_project(root, [table.slice(0, 10)])
    pq.write_table(table, root / "data" / "part-0.parquet", row_group_size=ROWS)
    spec = root / "pipeline.yaml"
    text = spec.read_text(encoding="utf-8").replace('id: {"type": "string", "nullable": false}',
                                                    'id: {"type": "string", "nullable": false, "unique": true}')
    spec.write_text(text + MONITOR, encoding="utf-8")  # a key column: evaluate writes it with each prediction
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
        first = run_plan(compile_local(spec)[0].train_plan, root, "one", jobs=1, progress=quiet())
        second = run_plan(compile_local(spec, RETRAIN)[0].train_plan, root, "two", jobs=1, progress=quiet())
        monitored = run_plan(compile_local(spec)[0].monitor_plan, root, "watch", jobs=1, progress=quiet())
    return root, table, first, second, monitored


def test_the_dataset_is_at_least_four_times_the_budget(loop, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    _, table, *_ = loop
    assert table.nbytes >= 4 << 20  # the budget is 1 MB
    assert batch_rows(8 * len(COLUMNS)) < ROWS // 4  # so no reader can take it in one batch


def test_the_whole_loop_completes_and_every_reader_used_many_batches(loop, monkeypatch):
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    root, _, first, second, monitored = loop
    for result in (first, second, monitored):
        assert result.ok, {k: r.get("message") for k, r in result.records.items()}
    assert first.records["promote.m"]["outputs"]["promoted"] is True
    gate, shadow = second.records["gate.m"]["outputs"], second.records["shadow.m"]["outputs"]
    assert gate["champion_version"] == 1  # the champion was scored on the test rows, batch by batch
    assert shadow.get("champion_version") == 1 and shadow["rows"] > 0
    expected = ROWS // batch_rows(8 * 3)  # at least this many (a few columns each), budget-sized batches
    assert gate["batches"] >= expected and gate["scored"] == ["champion"]
    assert shadow["scored"] == [] and shadow["batches"] >= ROWS // batch_rows(8)  # the label column: the gate
    # scored the champion on these rows and the train step the challenger
    assert second.records["evaluate.m"]["outputs"]["batches"] >= ROWS // batch_rows(8)  # the key column
    keyed = pq.read_table(root / ".loopc" / second.records["evaluate.m"]["artifact"] / "predictions_test.parquet")
    assert keyed.column_names == ["id", "label", "score"] and keyed.num_rows == gate_rows(second)
    watch = next(r for k, r in monitored.records.items() if k.startswith("monitor."))
    assert watch["outputs"]["rows"] == ROWS and watch["outputs"]["batches"] >= expected
    with open_registry(f"sqlite:///{root / '.loopc' / 'registry.db'}") as registry:
        assert registry.get_alias("m", CHAMPION) is not None


def gate_rows(run) -> int:
    return run.records["split.rows"]["outputs"]["split_rows"]["test"]


def _whole_split(root: Path, record: dict, split: str) -> pa.Table:
    """Every column of a split's rows in one table: what gate and shadow read before batches."""
    rows, assignment, _ = open_split(root / ".loopc", root / ".loopc" / record["outputs"]["split_artifact"])
    return rows.read(list(rows.names), np.asarray(assignment) == SPLITS.index(split))


def test_batched_gate_scores_equal_the_whole_split_bit_for_bit(loop, monkeypatch):
    root, _, first, second, _ = loop
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    features = second.records["features.m"]
    bundle = load_bundle(root / ".loopc" / first.records["train.m"]["artifact"])
    scores = score_split(root / ".loopc", features["outputs"]["split_artifact"], "test", [bundle],
                         labels_by=bundle, gate=GATE)
    whole = _whole_split(root, features, "test")
    assert scores.batches > 4
    assert np.array_equal(scores.predictions[0], bundle.score(whole))
    assert np.array_equal(scores.labels, bundle.labels(whole))
    streamed = evaluation(bundle.task, scores.labels, scores.predictions[0], scores.groups, GATE, None)
    reference = evaluation(bundle.task, bundle.labels(whole), bundle.score(whole), group_columns(whole, GATE),
                           GATE, None)
    assert streamed == reference


def test_chunked_predictions_equal_one_predict_call_across_chunk_edges(loop, monkeypatch):
    """Batches of uneven sizes crossing PREDICT_CHUNK, the last piece padded as predict pads it."""
    root, table, first, *_ = loop
    monkeypatch.setattr("loopc.runtime.train.predict.PREDICT_CHUNK", 1000)
    bundle = load_bundle(root / ".loopc" / first.records["train.m"]["artifact"])
    rows, _ = enforce_schema(table.slice(0, 5321), COLUMNS)
    predictor = ChunkedPredictor(bundle)
    for start, stop in ((0, 17), (17, 1400), (1400, 1401), (1401, 4999), (4999, 5321)):
        predictor.add(rows.slice(start, stop - start))
    assert np.array_equal(predictor.result(), bundle.score(rows))


def test_the_batched_monitor_report_equals_the_whole_table_report(loop):
    root, table, _, _, monitored = loop
    watch = next(r for k, r in monitored.records.items() if k.startswith("monitor."))
    drift = json.loads((root / ".loopc" / watch["artifact"] / "drift.json").read_text(encoding="utf-8"))
    with open_registry(f"sqlite:///{root / '.loopc' / 'registry.db'}") as registry:
        artifact = registry.version("m", watch["outputs"]["champion_version"]).artifact
    champion = load_bundle(root / ".loopc" / artifact)
    live, _ = enforce_schema(table, COLUMNS)
    whole = table_report(champion.profile(), live, champion.score(live), data_drift={"columns": ["a", "b", "cat",
                                                                                                   "region"]},
                         prediction_drift={"method": "psi", "max": 0.25})
    assert drift["rows"] == whole.rows == ROWS
    for name, stats in whole.columns.items():
        for key, value in stats.items():
            if isinstance(value, float):
                assert drift["columns"][name][key] == pytest.approx(value, abs=1e-9), (name, key)
            else:
                assert drift["columns"][name][key] == value, (name, key)
    assert drift["prediction"]["statistic"] == pytest.approx(whole.prediction["statistic"], abs=1e-12)
    assert drift["prediction"]["statistic"] > 0 and drift["live_rows_scored"]


def test_train_matrices_beyond_the_budget_are_memory_mapped_and_equal_the_in_memory_ones(loop, tmp_path,
                                                                                          monkeypatch):
    """The loop above trained from memory-mapped scratch matrices: under the budget they do not fit in memory."""
    from loopc.runtime.steps.matrices import MatrixSource, build_matrices

    root, _, first, *_ = loop
    features = first.records["features.m"]
    source = MatrixSource(root / ".loopc", features["outputs"]["split_artifact"],
                          root / ".loopc" / features["artifact"])
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    mapped = build_matrices(source, ("train", "valid"), tmp_path)
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", "1G")
    held = build_matrices(source, ("train", "valid"), tmp_path / "unused")
    for split in ("train", "valid"):
        assert isinstance(mapped[split].x, np.memmap) and type(held[split].x) is np.ndarray
        assert np.array_equal(mapped[split].x, held[split].x) and np.array_equal(mapped[split].y, held[split].y)


def test_the_shadow_compares_what_both_models_give_on_the_whole_test_split(loop, monkeypatch):
    """The shadow scored nothing (the gate's champion predictions, the train step's challenger ones): its
    comparison is the one of both models scoring the whole test split."""
    root, _, first, second, _ = loop
    monkeypatch.setenv("LOOPC_MEMORY_BUDGET", BUDGET)
    whole = _whole_split(root, second.records["features.m"], "test")
    champion, challenger = (load_bundle(root / ".loopc" / run.records["train.m"]["artifact"])
                            for run in (first, second))
    plan = compile_local(root / "pipeline.yaml", RETRAIN)[0].train_plan
    step = json.loads((plan.parent / "steps" / "shadow.m.json").read_text(encoding="utf-8"))
    expected = compare_shadow("binary_classification", champion.score(whole), challenger.score(whole),
                              challenger.labels(whole), step["config"]["shadow"]).to_dict()
    written = json.loads((root / ".loopc" / second.records["shadow.m"]["artifact"] / "shadow.json").read_text(
        encoding="utf-8"))
    assert {k: written[k] for k in expected} == json.loads(json.dumps(expected))
    assert written["rows"] == len(whole) > 0 and second.records["shadow.m"]["outputs"]["scored"] == []
