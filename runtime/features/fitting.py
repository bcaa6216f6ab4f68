"""Fitting feature transforms on the train rows as a stream of record batches, in bounded memory.

Each pass over the batches fits, for every feature, the next transform of its chain that needs data
(the values it sees are the raw values with the transforms fitted so far applied), so a chain of k
data-dependent transforms takes k passes and the usual chain takes one. Statistics are exact
streaming sums (mean, std, min, max, category counts; the batching changes them by about 1e-12).
Quantiles (``impute`` median, ``bucketize`` by ``quantiles``) are exact too, NumPy's ``median`` and
``quantile`` of the whole column: a systematic sample of ``SAMPLE_ROWS`` rows taken in the same pass
holds every value of a small train split; beyond it the sample brackets each wanted order statistic and
further passes (over the quantile features only, usually one) find it exactly (``sketch.ExactRanks``),
holding at most ``collect_values`` values of a column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopc.runtime.data.parallel import map_columns
from loopc.runtime.data.rows import memory_budget
from loopc.runtime.data.sketch import SAMPLE_ROWS, ExactRanks, Moments, SystematicSample
from loopc.runtime.features.transforms import (
    _APPLY,
    TERMINAL,
    TEXT_TYPES,
    FeatureError,
    FittedFeature,
    FittedFeatures,
    _as_text,
    _declared_text,
    _fmt,
    _raw_values,
    _transform_specs,
    feature_columns,
)


def needs_data(spec: dict) -> bool:
    """Whether fitting the transform reads the training values (else its state comes from the spec)."""
    kind = spec["kind"]
    if kind == "impute":
        return spec.get("strategy", "mean") != "constant"
    if kind == "bucketize":
        return spec.get("boundaries") is None
    if kind == "onehot":
        return spec.get("vocabulary") is None
    return kind in ("standardize", "minmax", "log")


def _static_state(spec: dict, where: str) -> dict:
    kind = spec["kind"]
    if kind == "clip":
        return {"min": spec.get("min"), "max": spec.get("max")}
    if kind == "impute":
        if spec.get("value") is None:
            raise FeatureError(f"{where}: impute strategy 'constant' needs 'value'")
        return {"value": float(spec["value"])}
    if kind == "bucketize":
        return {"edges": [float(b) for b in spec["boundaries"]]}
    if kind == "onehot":
        return {"vocabulary": [str(v) for v in spec["vocabulary"]]}
    if kind == "hash":
        return {"buckets": int(spec.get("buckets", 32))}
    return {}


class _NumericSummary:
    """What a numeric transform's fit needs of the values: moments over the finite ones, the count of
    values a log would reject, and (for quantiles) the finite values of the sampled rows, then the exact
    order statistics the quantiles need (``settle`` says when the state is ready)."""

    def __init__(self, spec: dict, collect: int):
        self.spec, self.moments, self.rejected, self.sample = spec, Moments(), 0, []
        self.offset, self.collect, self.exact = float(spec.get("offset", 1.0)), collect, None
        self.sampled = spec["kind"] == "bucketize" or spec.get("strategy", "mean") == "median"  # quantiles

    def update(self, values: np.ndarray, positions: np.ndarray) -> None:
        finite = np.isfinite(values)
        clean = values if finite.all() else values[finite]
        if self.exact is not None:
            self.exact.update(clean)
            return
        self.moments.update(clean)
        if self.spec["kind"] == "log":
            self.rejected += int(np.count_nonzero(clean + self.offset <= 0))
        if self.sampled:
            picked = values[positions]
            self.sample.append(picked[np.isfinite(picked)])

    def settle(self) -> bool:
        """End a pass: whether the state is ready (else another pass over the values is needed)."""
        if not self.sampled or not self.moments.count:
            return True
        if self.exact is None:
            sample = np.concatenate(self.sample)  # update appends a part for each batch; count > 0: one came
            self.exact, self.sample = ExactRanks(self._ranks(), self.moments.count, sample, self.collect), []
        else:
            self.exact.end_pass()
        return not self.exact.pending

    def _ranks(self) -> list[int]:
        """The order statistics (0-based) NumPy's median or linear quantiles of ``count`` values read."""
        count = self.moments.count
        if self.spec["kind"] == "impute":
            return [(count - 1) // 2, count // 2]
        lower = np.floor((count - 1) * self._levels()).astype(np.int64)
        return sorted({*lower.tolist(), *np.minimum(lower + 1, count - 1).tolist()})

    def _levels(self) -> np.ndarray:
        return np.linspace(0, 1, int(self.spec["quantiles"]) + 1)[1:-1]

    def _quantiles(self) -> list[float]:
        """NumPy's linear quantiles at the levels: its interpolation, applied to the two order statistics."""
        found, virtual = self.exact.found, (self.moments.count - 1) * self._levels()
        lower = np.floor(virtual)
        pairs = [(found[int(j)], found[min(int(j) + 1, self.moments.count - 1)]) for j in lower]
        return [float(np.quantile(np.array(pair), gamma)) for pair, gamma in zip(pairs, virtual - lower)]

    def _median(self) -> float:
        count, found = self.moments.count, self.exact.found
        return float(np.median(np.array([found[(count - 1) // 2], found[count // 2]])))

    def state(self, where: str) -> dict:
        kind, m = self.spec["kind"], self.moments
        if kind == "standardize":
            std = m.std if m.count else 1.0
            return {"mean": m.mean if m.count else 0.0, "std": std if std > 0 and np.isfinite(std) else 1.0}
        if kind == "minmax":
            low, high = (m.low, m.high) if m.count else (0.0, 1.0)
            return {"min": low, "span": high - low if high > low else 1.0}
        if kind == "log":
            return self._log_state(where)
        if kind == "bucketize":
            if not m.count:
                raise FeatureError(f"{where}: cannot fit quantile buckets: the training split has no values")
            return {"edges": [float(e) for e in np.unique(self._quantiles())]}
        strategy = self.spec.get("strategy", "mean")
        if not m.count:
            raise FeatureError(f"{where}: cannot impute the {strategy}: the training split has no values")
        return {"value": self._median() if strategy == "median" else m.mean}

    def _log_state(self, where: str) -> dict:
        floor = self.moments.low + self.offset
        if self.rejected:
            raise FeatureError(f"{where}: log needs value + offset > 0, but {self.rejected} training value(s) are "
                               f"<= {-self.offset:g} (smallest {_fmt(floor - self.offset)}); add a clip "
                               "transform with a min before log, or raise the offset")
        return {"offset": self.offset, "floor": floor if self.moments.count else 1.0}


class _CategorySummary:
    """Category counts of the values (numbers named as categories), for a fitted vocabulary."""

    def __init__(self, spec: dict):
        self.spec, self.counts = spec, {}

    def update(self, values, positions: np.ndarray) -> None:
        counted = pc.value_counts(pc.drop_null(_as_text(values)))
        for value, count in zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist()):
            self.counts[value] = self.counts.get(value, 0) + count

    def settle(self) -> bool:
        return True

    def state(self, where: str) -> dict:
        floor = self.spec.get("min_frequency", 1)
        ranked = sorted((-count, value) for value, count in self.counts.items() if count >= floor)
        return {"vocabulary": [value for _, value in ranked[: self.spec.get("max_categories", 100)]]}


def _summarised_state(spec: dict, text: bool, column: dict, where: str, collect: int) -> dict | None:
    """A data-dependent transform's state from a summary of the raw column's train values (``split_summary``),
    or None when the summary does not determine it (quantiles, a log that would reject values: the rows are read)."""
    if spec["kind"] == "onehot":
        counts = column.get("counts")
        if not text or counts is None:
            return None
        summary = _CategorySummary(spec)
        summary.counts = {str(value): count for value, count in counts["values"]}
        return summary.state(where)
    summary = _NumericSummary(spec, collect)  # a numeric column (seed checked): a text one takes only onehot or hash
    summary.moments = Moments.from_dict(column["numeric"]["moments"])
    if summary.sampled or (spec["kind"] == "log" and summary.moments.count
                           and summary.moments.low + summary.offset <= 0):
        return None
    return summary.state(where)


class _FeatureFit:
    """One feature's chain, fitted one data-dependent transform per pass."""

    def __init__(self, name: str, feature: dict, collect: int):
        self.name, self.feature, self.collect = name, feature, collect
        self.column, self.expr = feature.get("column"), feature.get("expr")
        source = f"column {self.column!r}" if self.column is not None else f"expr {self.expr!r}"
        self.where = f"feature '{name}' ({source})"
        if (self.column is None) == (self.expr is None):
            raise FeatureError(f"{self.where}: give exactly one of 'column' or 'expr'")
        self.specs, self.steps, self.summary, self.had_nulls, self.text = None, [], None, False, False
        self.seeded = False

    @property
    def done(self) -> bool:
        return self.specs is not None and len(self.steps) == len(self.specs)

    def seed(self, declared: str | None, column: dict) -> None:
        """Fit from a summary of the raw column's train values (``split_summary``) what it determines: the
        chain up to and with its first data-dependent transform, when that comes first, and whether the values
        held nulls. A seeded feature skips the first pass over the rows (``seeded``); later transforms that need
        data still take passes."""
        if self.column is None or not column:  # an expression, or a column the summary holds nothing of
            return
        text = declared in TEXT_TYPES
        if not text and column.get("numeric") is None:
            return
        specs = _transform_specs(self.feature, text, self.where)
        first = next((index for index, spec in enumerate(specs) if needs_data(spec)), None)
        if first not in (0, None):
            return
        state = None if first is None else _summarised_state(specs[0], text, column, self.where, self.collect)
        if first == 0 and state is None:
            return
        self.specs, self.text, self.seeded = specs, text, True
        self.had_nulls = not text and column["numeric"]["nan"] > 0
        if state is not None:
            with np.errstate(all="ignore"):
                self.steps.append({"kind": specs[0]["kind"], **state})
        self._advance()

    def update(self, table: pa.Table, positions: np.ndarray, first_pass: bool) -> None:
        values = _raw_values(table, self.column, self.expr, self.where)
        if self.specs is None:
            self.text = isinstance(values, pa.Array)
            self.specs = _transform_specs(self.feature, self.text, self.where)
            self._advance()
        if first_pass and not self.text:
            self.had_nulls = self.had_nulls or bool(np.isnan(values).any())
        if self.done:
            return
        with np.errstate(all="ignore"):
            for state in self.steps:
                values = _APPLY[state["kind"]](state, values)
        self.summary.update(values, positions)

    def end_pass(self) -> None:
        if self.summary is not None and self.summary.settle():
            with np.errstate(all="ignore"):
                self.steps.append({"kind": self.summary.spec["kind"], **self.summary.state(self.where)})
            self.summary = None
            self._advance()

    def _advance(self) -> None:
        """Fit the transforms that need no data, up to the next one that does (its summary starts)."""
        while len(self.steps) < len(self.specs):
            spec = self.specs[len(self.steps)]
            if needs_data(spec):
                self.summary = _CategorySummary(spec) if spec["kind"] == "onehot" else _NumericSummary(spec, self.collect)
                return
            self.steps.append({"kind": spec["kind"], **_static_state(spec, self.where)})

    def result(self) -> FittedFeature:
        imputed = any(s["kind"] == "impute" for s in self.specs)
        terminal = bool(self.specs) and self.specs[-1]["kind"] in TERMINAL
        return FittedFeature(self.name, self.column, self.expr, self.text, tuple(self.steps),
                             self.had_nulls and not imputed and not terminal)


class StreamingFit:
    """Every feature of a model fitted over passes of train batches: call ``update`` with each batch
    (in the same order every pass) and ``end_pass`` after each pass while ``pending``.

    ``collect_values``: the most values the exact quantile fits hold at once, all features together
    (default: an eighth of ``LOOPC_MEMORY_BUDGET`` in float64 values, shared by the features)."""

    def __init__(self, features: dict[str, dict], columns: dict[str, dict] | None, rows: int,
                 sample_rows: int = SAMPLE_ROWS, threads: int | None = None, collect_values: int | None = None,
                 summaries: dict[str, dict] | None = None):
        self.features, self.declared, self.threads = features, columns or {}, threads
        collect = (memory_budget() // 64 if collect_values is None else collect_values) // max(1, len(features))
        self.fits = [_FeatureFit(name, feature, collect) for name, feature in features.items()]
        self.sample, self.passes = SystematicSample(rows, sample_rows), 0
        for fit in self.fits if summaries else []:
            fit.seed(self.declared.get(fit.column, {}).get("type"), summaries.get(fit.column, {}))

    def _reading(self) -> list[_FeatureFit]:
        """The features this pass reads rows for: those still fitting and, in the first pass, every one not
        seeded from a summary (its missing indicator is found there too)."""
        return [fit for fit in self.fits if not fit.done or (self.passes == 0 and not fit.seeded)]

    @property
    def columns(self) -> list[str]:
        """The raw columns the features read, in the order they ask for them; after the first pass only
        those of the features still fitting."""
        return list(dict.fromkeys(c for fit in self._reading() for c in feature_columns(fit.feature)))

    @property
    def pending(self) -> bool:
        return bool(self._reading())

    def update(self, table: pa.Table) -> None:
        table = _declared_text(table, self.features, self.declared)
        positions, first = self.sample.positions(table.num_rows), self.passes == 0
        todo = self._reading()
        map_columns(lambda fit: fit.update(table, positions, first), todo, self.threads)

    def end_pass(self) -> None:
        for fit in self.fits:
            fit.end_pass()
        self.sample.restart()
        self.passes += 1

    def result(self) -> FittedFeatures:
        return FittedFeatures([fit.result() for fit in self.fits])


def fit_stream(batches: Callable[[], Iterable[pa.Table]], features: dict[str, dict],
               columns: dict[str, dict] | None, rows: int, sample_rows: int = SAMPLE_ROWS,
               collect_values: int | None = None) -> FittedFeatures:
    """Fit every feature on the train rows that ``batches()`` yields (called once per pass)."""
    fit = StreamingFit(features, columns, rows, sample_rows, collect_values=collect_values)
    while fit.pending:
        for table in batches():
            fit.update(table)
        fit.end_pass()
    return fit.result()
