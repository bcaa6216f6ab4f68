"""The streaming fit and the streamed profile sketch against plain NumPy on the whole column.

The oracle below is the one-shot in-memory fit loopc had before fitting was streamed (kept here, only
here, as the reference): exact statistics of the whole train column, NumPy quantiles (exact however many
rows: beyond the sample, ``ExactRanks`` finds the order statistics in further passes).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pytest
from drift_support import table_report
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from loopc.runtime.data.sketch import SAMPLE_ROWS, ExactRanks, Moments, SystematicSample
from loopc.runtime.features.fitting import StreamingFit, fit_stream
from loopc.runtime.features.transforms import _APPLY, FeatureError, _as_text
from loopc.runtime.monitor.profile import PointCounts, ProfileSketch, build_profile

CHAINS = [
    ["standardize"],
    ["minmax"],
    ["log"],
    [{"kind": "clip", "min": 0.0}, {"kind": "log", "offset": 1.0}],
    ["impute", "standardize"],
    [{"kind": "impute", "strategy": "median"}, "minmax"],
    [{"kind": "bucketize", "quantiles": 5}],
    [{"kind": "clip", "max": 10.0}, "standardize", {"kind": "bucketize", "quantiles": 3}],
    ["onehot"],
]
DEGENERATE = "std of rounding noise"


def _oracle_state(spec: dict, values: np.ndarray) -> dict:
    """The state one transform gets from the whole column (the in-memory fit)."""
    finite, kind = values[np.isfinite(values)], spec["kind"]
    if kind == "standardize":
        std = float(finite.std()) if finite.size else 1.0
        if finite.size and 0 < std < 1e-9 * max(1.0, abs(float(finite.mean()))):
            return {"error": DEGENERATE}  # a constant column's rounding noise: either side may call it 0
        return {"mean": float(finite.mean()) if finite.size else 0.0, "std": std if std > 0 else 1.0}
    if kind == "minmax":
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        return {"min": low, "span": high - low if high > low else 1.0}
    if kind == "log":
        shifted = finite + spec.get("offset", 1.0)
        if (shifted <= 0).any():
            return {"error": "log needs value + offset > 0"}
        return {"offset": spec.get("offset", 1.0), "floor": float(shifted.min()) if shifted.size else 1.0}
    if kind == "clip":
        return {"min": spec.get("min"), "max": spec.get("max")}
    if kind == "impute":
        if not finite.size:
            return {"error": "cannot impute"}
        median = spec.get("strategy") == "median"
        return {"value": float(np.median(finite) if median else finite.mean())}
    if kind == "bucketize":
        if not finite.size:
            return {"error": "cannot fit quantile buckets"}
        levels = np.linspace(0, 1, spec["quantiles"] + 1)[1:-1]
        return {"edges": [float(e) for e in np.unique(np.quantile(finite, levels))]}
    text = [v for v in _as_text(values).to_pylist() if v is not None]  # how categories are named (NaN: null)
    names, counts = np.unique(np.asarray(text, dtype=object).astype(str), return_counts=True)
    return {"vocabulary": [str(v) for _, v in sorted(zip(-counts, names))][:100]}


def _oracle(values: np.ndarray, chain: list) -> list[dict] | str:
    states = []
    with np.errstate(all="ignore"):
        for spec in [{"kind": s} if isinstance(s, str) else s for s in chain]:
            state = _oracle_state(spec, values)
            if "error" in state:
                return state["error"]
            states.append({"kind": spec["kind"], **state})
            values = _APPLY[spec["kind"]](states[-1], values)
    return states


def _batches(table: pa.Table, cuts: list[int]):
    bounds = sorted({0, table.num_rows, *(c for c in cuts if 0 < c < table.num_rows)})
    return lambda: [table.slice(a, b - a) for a, b in zip(bounds, bounds[1:])]


def _assert_states_close(got: list[dict], want: list[dict]) -> None:
    assert [s["kind"] for s in got] == [s["kind"] for s in want]
    for a, b in zip(got, want):
        assert a.keys() == b.keys()
        for key, value in b.items():
            if isinstance(value, float):
                assert a[key] == pytest.approx(value, rel=1e-9, abs=1e-9), (a, b)
            elif isinstance(value, list) and value and isinstance(value[0], float):
                np.testing.assert_allclose(a[key], value, rtol=1e-9, atol=1e-9)
            else:
                assert a[key] == value, (a, b)


numbers = st.one_of(st.floats(-1e4, 1e4), st.integers(-5, 5).map(float), st.just(float("nan")),
                    st.just(float("inf")))


@settings(max_examples=150, deadline=None)
@given(values=st.lists(numbers, min_size=1, max_size=60), chain=st.sampled_from(CHAINS),
       cuts=st.lists(st.integers(0, 60), max_size=6), sample_rows=st.integers(1, 80),
       collect=st.integers(1, 40))
def test_a_streamed_fit_over_any_batches_equals_the_one_shot_fit(values, chain, cuts, sample_rows, collect):
    column = np.asarray(values)
    table = pa.table({"v": column})
    want = _oracle(column, chain)
    assume(want != DEGENERATE)
    features = {"f": {"column": "v", "transforms": chain}}
    if isinstance(want, str):
        with pytest.raises(FeatureError, match=re.escape(want)):
            fit_stream(_batches(table, cuts), features, None, len(column), sample_rows, collect)
        return
    fitted = fit_stream(_batches(table, cuts), features, None, len(column), sample_rows, collect).features[0]
    _assert_states_close(list(fitted.steps), want)
    kinds = [s if isinstance(s, str) else s["kind"] for s in chain]
    unimputed = "impute" not in kinds and kinds[-1] not in ("bucketize", "onehot", "hash")
    assert fitted.missing_indicator == (bool(np.isnan(column).any()) and unimputed)
    one_shot = fit_stream(lambda: [table], features, None, len(column), sample_rows).features[0]
    np.testing.assert_allclose(fitted.apply(table), one_shot.apply(table), rtol=1e-6, atol=1e-6)


def _quantile_features(quantiles: int) -> dict[str, dict]:
    return {"b": {"column": "v", "transforms": [{"kind": "bucketize", "quantiles": quantiles}]},
            "m": {"column": "v", "transforms": [{"kind": "impute", "strategy": "median"}]}}


def _numpy_quantile_states(column: np.ndarray, quantiles: int) -> tuple[list[float], float]:
    finite = column[np.isfinite(column)]
    levels = np.linspace(0, 1, quantiles + 1)[1:-1]
    return [float(e) for e in np.unique(np.quantile(finite, levels))], float(np.median(finite))


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.integers(-3, 3).map(float), st.floats(-1e6, 1e6), st.just(float("nan"))),
                       min_size=1, max_size=400),
       quantiles=st.integers(2, 12), cuts=st.lists(st.integers(0, 400), max_size=6),
       sample_rows=st.integers(1, 60), collect=st.integers(1, 100))
def test_quantile_fits_beyond_the_sample_equal_numpy_on_the_whole_column(values, quantiles, cuts, sample_rows,
                                                                         collect):
    """Ties, heavy duplicates, samples a fraction of the rows, collections capped below a bracket: exact."""
    column = np.asarray(values)
    assume(np.isfinite(column).any())
    edges, median = _numpy_quantile_states(column, quantiles)
    fitted = fit_stream(_batches(pa.table({"v": column}), cuts), _quantile_features(quantiles), None,
                        len(column), sample_rows, collect)
    assert fitted.features[0].steps[0]["edges"] == edges
    assert fitted.features[1].steps[0]["value"] == median


def _find_ranks(values: np.ndarray, ranks: list[int], sample: np.ndarray, collect: int, sample_size: int,
                batch: int) -> ExactRanks:
    search = ExactRanks(ranks, len(values), sample, collect, sample_size)
    while search.pending:
        assert search.passes < 10 * len(values) + 10  # it always terminates (a window shrinks every 2 passes)
        for start in range(0, len(values), batch):
            search.update(values[start:start + batch])
        search.end_pass()
    return search


@settings(max_examples=300, deadline=None)
@given(data=st.data(), values=st.lists(st.one_of(st.integers(0, 4).map(float), st.floats(-1e3, 1e3)),
                                       min_size=1, max_size=300),
       collect=st.integers(1, 60), sample_size=st.integers(1, 30), batch=st.integers(1, 80))
def test_exact_ranks_from_any_sample_even_one_that_misses_are_the_sorted_values(data, values, collect, sample_size,
                                                                               batch):
    """Any subset as the sample (an unrepresentative one makes the brackets miss): the ranks come out exact
    and the values held never pass the cap."""
    column = np.asarray(values)
    ranks = data.draw(st.lists(st.integers(0, len(column) - 1), min_size=1, max_size=8))
    chosen = data.draw(st.lists(st.integers(0, len(column) - 1), max_size=len(column) - 1, unique=True))
    search = _find_ranks(column, ranks, column[chosen], collect, sample_size, batch)
    ordered = np.sort(column)
    assert search.found == {r: float(ordered[r]) for r in ranks}
    assert search.peak <= collect


def test_a_sample_on_the_wrong_phase_of_a_periodic_column_misses_and_the_next_passes_still_find_the_median():
    rows = 10_000
    column = (np.arange(rows) % 10) * 1_000.0 + np.arange(rows) / rows  # every 10th row: the smallest tenth
    sample = column[SystematicSample(rows, 1_000).positions(rows)]
    assert sample.max() < np.quantile(column, 0.11)  # the bracket around the sample's median misses
    search = _find_ranks(column, [rows // 2 - 1, rows // 2], sample, collect=2_000, sample_size=1_000, batch=777)
    ordered = np.sort(column)
    assert search.found == {rows // 2 - 1: ordered[rows // 2 - 1], rows // 2: ordered[rows // 2]}
    assert search.passes >= 2 and search.peak <= 2_000


def test_quantile_fits_beyond_the_sample_are_exact_in_one_more_pass_over_the_quantile_columns_only():
    rng = np.random.default_rng(3)
    column = rng.lognormal(0.0, 1.0, 200_000)
    column[rng.random(200_000) < 0.02] = np.nan
    table = pa.table({"v": column, "w": rng.normal(size=200_000)})
    features = _quantile_features(10) | {"s": {"column": "w", "transforms": ["standardize"]}}
    fit = StreamingFit(features, None, len(column), sample_rows=20_000)
    read = []
    while fit.pending:
        read.append(fit.columns)
        for start in range(0, 200_000, 30_001):
            fit.update(table.slice(start, 30_001).select(fit.columns))
        fit.end_pass()
    assert read == [["v", "w"], ["v"]]  # the sample pass, then one pass over the quantile feature's column
    edges, median = _numpy_quantile_states(column, 10)
    fitted = fit.result()
    assert fitted.features[0].steps[0]["edges"] == edges and len(edges) == 9
    assert fitted.features[1].steps[0]["value"] == median


@pytest.mark.parametrize("impute", [{"kind": "impute"}, {"kind": "impute", "strategy": "mean"}])
def test_a_mean_impute_beyond_the_sample_fits_in_one_pass(impute):
    column = np.random.default_rng(4).normal(size=5_000)
    fit = StreamingFit({"m": {"column": "v", "transforms": [impute]}}, None, len(column), sample_rows=100)
    while fit.pending:
        fit.update(pa.table({"v": column}))
        fit.end_pass()
    assert fit.passes == 1  # a mean needs no order statistics: no second pass, whatever the default
    assert fit.result().features[0].steps[0]["value"] == pytest.approx(column.mean())


def test_moments_over_batches_equal_numpy_far_from_zero():
    values = np.random.default_rng(0).normal(1e6, 0.01, 50_000)
    moments = Moments()
    for part in np.array_split(values, 7):
        moments.update(part)
    assert moments.mean == pytest.approx(values.mean(), rel=1e-12)
    assert moments.std == pytest.approx(values.std(), rel=1e-6)
    assert (moments.low, moments.high, moments.count) == (values.min(), values.max(), 50_000)


@given(rows=st.integers(0, 500), size=st.integers(1, 100), cuts=st.lists(st.integers(1, 500), max_size=5))
def test_a_systematic_sample_is_the_same_rows_however_the_stream_is_cut(rows, size, cuts):
    bounds = sorted({0, rows, *(c for c in cuts if c < rows)})
    sample = SystematicSample(rows, size)
    picked = np.concatenate([a + sample.positions(b - a) for a, b in zip(bounds, bounds[1:])] + [np.zeros(0, int)])
    stride = max(1, -(-rows // size))
    assert picked.tolist() == list(range(0, rows, stride)) and len(picked) <= size


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.floats(-1e9, 1e9), st.integers(-3, 3).map(float)), min_size=1, max_size=80),
       extra=st.lists(st.floats(-1e9, 1e9), max_size=10), cells=st.sampled_from([1, 2, 8, 1 << 16]))
def test_point_counts_are_exact_for_ties_and_any_grid(values, extra, cells):
    array = np.asarray(values)
    points = np.unique(np.concatenate([array[::3], [v for v in extra if array.min() <= v <= array.max()]]))
    counter = PointCounts(points, float(array.min()), float(array.max()), cells)
    for part in np.array_split(array, 3):
        counter.add(part)
    le, lt = counter.counts()
    ordered = np.sort(array)
    assert le.tolist() == np.searchsorted(ordered, points, side="right").tolist()
    assert lt.tolist() == np.searchsorted(ordered, points, side="left").tolist()


def test_a_profile_sketch_beyond_its_sample_keeps_exact_counts_at_near_quantile_points():
    rng = np.random.default_rng(5)
    n = 300_000
    amount = rng.gamma(2.0, 3.0, n)
    amount[rng.random(n) < 0.01] = np.nan
    table = pa.table({"amount": pa.array(amount, from_pandas=True), "calls": rng.poisson(3.0, n)})
    columns = {"amount": {"type": "float"}, "calls": {"type": "int"}}
    sketch = ProfileSketch(columns, n, sample_rows=20_000)
    for start in range(0, n, 70_001):
        sketch.observe(table.slice(start, 70_001))
    for start in range(0, n, 110_000):
        sketch.count(table.slice(start, 110_000))
    profile = sketch.sketches()
    for name in columns:
        got = profile[name]
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
        ordered = np.sort(values[np.isfinite(values)])
        points = np.asarray(got["points"])
        assert got["le"] == np.searchsorted(ordered, points, side="right").tolist()  # exact, not sampled
        assert got["lt"] == np.searchsorted(ordered, points, side="left").tolist()
        assert (got["min"], got["max"], got["count"]) == (ordered[0], ordered[-1], len(ordered))
        assert got["mean"] == pytest.approx(ordered.mean(), rel=1e-9)
        assert got["std"] == pytest.approx(ordered.std(), rel=1e-9)
        edges_le = np.searchsorted(ordered, got["psi_edges"], side="right")
        assert got["psi_ref"] == pytest.approx(np.diff(np.concatenate([[0], edges_le, [len(ordered)]])) / len(ordered))
        gaps = (np.asarray(got["lt"][1:]) - np.asarray(got["le"][:-1])) / len(ordered)
        assert gaps.max(initial=0.0) < 0.004  # KS is exact at the points to within this (the drift ks_error)
    calls = profile["calls"]["points"]  # data values, never between them; the common ones all; the max
    assert all(p.is_integer() for p in calls) and set(range(9)) <= set(calls) and profile["calls"]["max"] in calls


def _drift_table(rng, n, shift=0.0):
    return pa.table({"amount": rng.lognormal(3.0 + shift, 0.5, n), "calls": rng.poisson(2.0 + 4 * shift, n)})


@pytest.mark.parametrize("sample_rows", [200, 2_000, 1 << 20])
def test_drift_on_a_sampled_profile_stays_meaningful(sample_rows):
    rng = np.random.default_rng(11)
    columns = {"amount": {"type": "float"}, "calls": {"type": "int"}}
    config = {"columns": None, "methods": ["psi", "ks"], "psi_max": 0.2, "js_max": 0.1, "p_value": 0.01,
              "min_drifted": 1}
    profile = build_profile(_drift_table(rng, 40_000), columns, None, sample_rows=sample_rows)
    same = table_report(profile, _drift_table(rng, 40_000), data_drift=config)
    assert not same.breach and same.drifted == []
    shifted = table_report(profile, _drift_table(rng, 40_000, shift=0.1), data_drift=config)
    assert shifted.breach and sorted(shifted.drifted) == ["amount", "calls"]


def test_the_fit_and_the_profile_hold_a_bounded_sample_however_many_rows():
    """What streaming keeps is the sample (at most ``sample_rows`` values a column), never the rows; the
    exact quantile passes then hold at most ``collect_values`` values."""
    rows, size, cap = 400_000, 1_000, 30_000
    table = pa.table({"v": np.random.default_rng(2).normal(size=rows)})
    fit = StreamingFit({"m": {"column": "v", "transforms": [{"kind": "impute", "strategy": "median"}]}}, None, rows,
                       sample_rows=size, collect_values=cap)
    sketch = ProfileSketch({"v": {"type": "float"}}, rows, sample_rows=size)
    for start in range(0, rows, 9_999):
        fit.update(table.slice(start, 9_999))
        sketch.observe(table.slice(start, 9_999))
    held = sum(len(part) for part in fit.fits[0].summary.sample)
    assert held == sum(len(part) for part in sketch.columns["v"].sample) and size // 2 < held <= size
    fit.end_pass()
    search = fit.fits[0].summary.exact
    while fit.pending:
        for start in range(0, rows, 9_999):
            fit.update(table.slice(start, 9_999))
        fit.end_pass()
    assert 0 < search.peak <= cap and search.passes >= 2  # a first bracket larger than the cap: narrowed
    assert fit.result().features[0].steps[0]["value"] == float(np.median(table.column("v").to_numpy()))


def test_the_features_step_beyond_the_sample_writes_numpy_quantiles_of_the_whole_train_column(tmp_path):
    """The real step on more train rows than the sample holds: transform.json's median and quantile edges
    are NumPy's on the whole train column, and every other state matches the one-shot fit."""
    from test_data_path import assert_close, random_table, reference, run_until, write_project

    write_project(tmp_path, [random_table(115_000, 7)])
    records = run_until(tmp_path, "features.m")
    fitted = json.loads((tmp_path / ".loopc" / records["features.m"]["artifact"] / "transform.json").read_text())
    expected = reference(tmp_path, "hash")
    train = expected["tables"]["train"]
    assert train.num_rows > SAMPLE_ROWS
    steps = {f["name"]: f["steps"] for f in fitted["features"]}
    a = train.column("a").to_numpy(zero_copy_only=False).astype(np.float64)
    b = train.column("b").to_numpy()
    assert steps["a_med"][0] == {"kind": "impute", "value": float(np.median(a[np.isfinite(a)]))}
    levels = np.linspace(0, 1, 8)[1:-1]
    assert steps["b_q"] == [{"kind": "bucketize", "edges": [float(e) for e in np.unique(np.quantile(b, levels))]}]
    assert_close(fitted, expected["fitted"].to_dict())
