"""steps/model.PredictionFile: a split's predictions file keeps the matrices' row order whether the rows
come with key batches or, without key columns, in slices."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopc.runtime.steps.model import PredictionFile


def test_keyless_rows_are_written_in_slices_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(PredictionFile, "SLICE", 2)
    labels, scores = np.array([0, 1, 1, 0, 1], np.float32), np.linspace(0.1, 0.5, 5, dtype=np.float32)
    file = PredictionFile(tmp_path / "p.parquet", labels, scores)
    file.close()
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.column("label").to_pylist() == labels.tolist()
    assert np.array_equal(table.column("score").to_numpy(), scores)


def test_key_batches_take_the_next_rows_and_an_empty_split_still_gets_a_file(tmp_path):
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], np.float32)
    file = PredictionFile(tmp_path / "p.parquet", np.array([0, 1, 0], np.float32), probs)
    file.write(pa.table({"id": [7, 8]}))
    file.write(pa.table({"id": pa.array([], pa.int64())}))
    file.write(pa.table({"id": [9]}))
    file.close()
    table = pq.read_table(tmp_path / "p.parquet")
    assert table.column("id").to_pylist() == [7, 8, 9]
    assert np.array_equal(np.array(table.column("probabilities").to_pylist(), np.float32), probs)
    empty = PredictionFile(tmp_path / "e.parquet", np.zeros(0, np.float32), np.zeros(0, np.float32))
    empty.close()
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0
