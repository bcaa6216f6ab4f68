"""Scoring refuses outputs a model cannot give before it reads a row (loopc predict and the scoring step)."""

from __future__ import annotations

import pytest

from loopc.runtime.score.batch import WRITABLE, check_outputs
from loopc.runtime.score.resolve import ScoreError


@pytest.mark.parametrize("task", ["binary_classification", "multiclass_classification", "regression"])
def test_every_output_a_task_gives_is_accepted(task):
    outputs = tuple(w for w in WRITABLE if task == "multiclass_classification" or w != "probabilities")
    check_outputs(task, outputs)


@pytest.mark.parametrize(("task", "write", "problem"), [
    ("regression", ("probabilities",), "only a multiclass model writes probabilities; this regression model's "
                                       "score is the predicted value"),
    ("binary_classification", ("score", "probabilities"), r"binary_classification model's score is P\(y=1\)"),
    ("binary_classification", (), "cannot write nothing; choose from score, label"),
    ("multiclass_classification", ("score", "bogus"), "cannot write bogus; choose from score, label"),
])  # fmt: skip
def test_an_output_the_model_cannot_give_is_refused(task, write, problem):
    with pytest.raises(ScoreError, match=problem):
        check_outputs(task, write)


@pytest.mark.parametrize(("keys", "write", "clash"), [
    (("customer_id", "label"), ("score", "label"), "label"),
    (("scored_at",), ("timestamp",), "scored_at"),
    (("id", "version"), ("score",), "version"),
    (("batch",), ("score",), "batch"),
])  # fmt: skip
def test_a_key_the_output_would_replace_is_refused(keys, write, clash):
    with pytest.raises(ScoreError, match=f"key column\\(s\\) {clash} have the name of an output"):
        check_outputs("binary_classification", write, keys)
    others = tuple(k for k in keys if k != clash)
    check_outputs("binary_classification", write, others)
    if clash == "label":
        check_outputs("binary_classification", ("score",), keys)  # label not written: a key may be called so


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_a_folder_without_files_says_so_not_that_every_column_is_missing(tmp_path, fmt):
    import pyarrow.dataset as ds

    from loopc.runtime.score.batch import ScoreJob, _columns

    (tmp_path / "rows").mkdir()
    job = ScoreJob(source=str(tmp_path / "rows"), output=tmp_path / "out", format=fmt)
    with pytest.raises(ScoreError, match=f"^'{tmp_path / 'rows'}' holds no {fmt} file to score$"):
        _columns(None, job, ds.dataset(tmp_path / "rows", format=fmt))
