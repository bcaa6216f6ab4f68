"""Labels joined with stored predictions: a multiclass model's probabilities survive the join, row for row."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopc.runtime.monitor.feedback import MULTICLASS, FeedbackError, join_labels, realized_metrics


def _predictions() -> pa.Table:
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]], np.float32)
    flat = pa.array(probabilities.reshape(-1))
    return pa.table({"key": [10, 11, 12, 13], "_row": ["a", "b", "c", "d"], "model_version": [1, 1, 2, 2],
                     "probabilities": pa.FixedSizeListArray.from_arrays(flat, 3)})


def test_a_multiclass_models_probabilities_are_carried_through_the_join_by_key():
    labels = pa.table({"key": ["13", "11", "99", "10"], "species": ["c", "b", "a", None]})
    joined = join_labels(_predictions(), labels, ["key"], "species")
    by_key = {row["key"]: row for row in joined.to_pylist()}
    assert sorted(by_key) == [11, 13]  # 99 was never scored, 10's label is null
    assert by_key[11]["probabilities"] == pytest.approx([0.1, 0.8, 0.1]) and by_key[11]["species"] == "b"
    assert by_key[13]["probabilities"] == pytest.approx([0.3, 0.3, 0.4]) and by_key[13]["_row"] == "d"
    assert joined.column_names == ["key", "_row", "model_version", "species", "probabilities"]
    classes = ["a", "b", "c"]
    metrics = realized_metrics(joined, MULTICLASS, "species",
                               lambda column: np.array([classes.index(v) for v in column.to_pylist()]),
                               lambda y, pred: {"argmax_right": float(np.mean(pred.argmax(1) == y))})
    assert metrics == {1: {"rows": 1, "metrics": {"argmax_right": 1.0}},
                       2: {"rows": 1, "metrics": {"argmax_right": 1.0}}}


def test_label_keys_that_cannot_be_read_as_the_scored_keys_name_the_key():
    labels = pa.table({"key": ["ten"], "species": ["a"]})
    with pytest.raises(FeedbackError, match="the label rows' key 'key' \\(string\\) cannot be read as the scored "
                                            "rows' int64"):
        join_labels(_predictions(), labels, ["key"], "species")


def test_stored_predictions_are_read_by_the_columns_scoring_writes_and_what_they_lack_is_named_as_written(tmp_path):
    import datetime as dt

    import pyarrow.parquet as pq

    from loopc.runtime.monitor.feedback import read_predictions

    folder = tmp_path / "version=1" / "batch=b"
    folder.mkdir(parents=True)
    early, late = dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 1, 3, tzinfo=dt.UTC)
    pq.write_table(pa.table({"key": [1, 2], "score": [0.1, 0.9], "model_version": [1, 1],
                             "scored_at": pa.array([early, late], pa.timestamp("us", tz="UTC"))}), folder / "p.parquet")
    since = read_predictions(tmp_path, ["key"], "binary_classification", dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    assert since.column_names == ["key", "model_version", "score", "scored_at"] and since["key"].to_pylist() == [2]
    assert read_predictions(tmp_path, ["key"], "binary_classification", None).column_names == [
        "key", "model_version", "score"]
    with pytest.raises(FeedbackError, match="lack region, probabilities; add them to scoring.keys / scoring.write"):
        read_predictions(tmp_path, ["key", "region"], MULTICLASS, None)
    pq.write_table(pa.table({"key": [1], "score": [0.1], "model_version": [1]}), folder / "p.parquet")
    with pytest.raises(FeedbackError, match="lack timestamp; add"):  # the output's name, not its column's
        read_predictions(tmp_path, ["key"], "binary_classification", early)


def test_a_label_repeated_counts_once_and_labels_that_disagree_on_a_key_are_an_error():
    repeated = pa.table({"key": ["11", "11", "13", "13", "11", None, None],
                         "species": ["b", "b", "c", "c", "b", "a", "b"]})  # rows without a key label nothing
    joined = join_labels(_predictions(), repeated, ["key"], "species")
    assert sorted(joined.column("key").to_pylist()) == [11, 13]  # a file delivered twice is not twice the rows
    disagree = pa.table({"key": ["11", "13", "11", "12"], "species": ["b", "c", "a", None]})
    with pytest.raises(FeedbackError, match="1 key\\(s\\) have label rows that disagree on 'species' "
                                            "\\(e.g. key=11\\); keep one label per key"):
        join_labels(_predictions(), disagree, ["key"], "species")
