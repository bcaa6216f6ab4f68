"""Reference-profile columns observed from validate's summary of the train rows (data/split_summary), so the
features step places the profile's points without reading a row: the same state ``ProfileSketch.observe``
reaches over the train rows, with the same sample, so the finished profile is the same."""

from __future__ import annotations

from loopc.runtime.data.sketch import SAMPLE_ROWS, Moments, SystematicSample
from loopc.runtime.data.split_record import TrainSummary
from loopc.runtime.monitor.profile import (
    CATEGORICAL_TYPES,
    MAX_CATEGORIES,
    NUMERIC_TYPES,
    PSI_BINS,
    QUANTILES,
    CategoricalColumn,
    NumericColumn,
    category_key,
)


def summarised_columns(specs: dict[str, dict], summary: TrainSummary, train_rows: int, *,
                       quantiles: int = QUANTILES, psi_bins: int = PSI_BINS, max_categories: int = MAX_CATEGORIES,
                       sample_rows: int = SAMPLE_ROWS) -> dict[str, NumericColumn | CategoricalColumn]:
    """Profile columns of ``specs`` (name -> column spec) that the summary observes: a numeric column it
    summarised (int or float) whose sample is the one a ``ProfileSketch`` of ``train_rows`` rows takes (the same
    stride), a categorical column (bool, string, category) whose values it counted. Columns it cannot observe
    are left out (they are read)."""
    stride_matches = summary.record["sample_stride"] == SystematicSample(train_rows, sample_rows).stride
    observed: dict[str, NumericColumn | CategoricalColumn] = {}
    for name, spec in specs.items():
        column, kind = summary.column(name), spec.get("type")
        if kind in NUMERIC_TYPES and column.get("numeric") is not None and stride_matches:
            numeric = NumericColumn(quantiles, psi_bins)
            numeric.moments = Moments.from_dict(column["numeric"]["moments"])
            numeric.nulls = column["numeric"]["nonfinite"]
            numeric.sample = [summary.sample(name)]
            observed[name] = numeric
        elif kind in CATEGORICAL_TYPES and column.get("counts") is not None:
            categorical = CategoricalColumn(max_categories)
            for value, count in column["counts"]["values"]:
                key = category_key(value)
                categorical.counts[key] = categorical.counts.get(key, 0) + count
            categorical.nulls = column["counts"]["nulls"]
            observed[name] = categorical
    return observed
