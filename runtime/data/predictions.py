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


def replaced_keys(write: tuple[str, ...] | list[str], keys: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
    """(the keys the output would replace, the columns it takes): keys named as a written output's column or a
    partition."""
    taken = sorted({WRITE_COLUMNS[w] for w in write if w in WRITE_COLUMNS} | set(PARTITIONS))
    return [k for k in keys if k in taken], taken


def probabilities_refused(multiclass: bool, write: tuple[str, ...] | list[str]) -> bool:
    """Whether ``write`` asks for probabilities of a model that is not multiclass (it has a score only)."""
    return not multiclass and "probabilities" in write
