"""Stored predictions, the scoring plan's output: the column each ``scoring.write`` output is stored as and the
outputs a labels join reads from them. Scoring writes them, the labels feedback reads them and the spec's
cross-checks ask for them: this table is the one all three use. Imports nothing."""

from __future__ import annotations

WRITE_COLUMNS = {"score": "score", "label": "label", "probabilities": "probabilities",
                 "model_version": "model_version", "timestamp": "scored_at"}
PARTITIONS = ("version", "batch")  # the hive partitions of the scoring output (OUTPUT/version=N/batch=B/)


def joined_outputs(multiclass: bool, windowed: bool) -> list[str]:
    """The ``scoring.write`` outputs a labels join reads: the version, the score (a multiclass model's
    probabilities) and, for a window of labels, the time each prediction was made."""
    return ["model_version", "probabilities" if multiclass else "score", *(["timestamp"] if windowed else [])]
