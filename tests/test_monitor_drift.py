"""Drift monitoring: reference profiles, per-column statistics against scipy, verdicts, cooldown."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest
from drift_support import table_report
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from loopc.runtime.monitor.profile import QUANTILES, build_profile
from loopc.runtime.monitor.verdict import (
    MonitorError,
    cooldown_allows,
    record_trigger,
)

COLUMNS = {"amount": {"type": "float"}, "calls": {"type": "int"}, "plan": {"type": "category"}}
DATA_DRIFT = {"columns": None, "methods": ["psi", "ks", "chi2"], "psi_max": 0.2, "js_max": 0.1,
              "p_value": 0.01, "min_drifted": 1}  # fmt: skip


def _table(rng, n=20_000, shift=0.0, plans=("basic", "plus", "pro"), probs=(0.5, 0.3, 0.2)):
    amount = rng.lognormal(3.0 + shift, 0.5, size=n)
    amount[rng.uniform(size=n) < 0.02] = np.nan
    return pa.table({
        "amount": pa.array(amount, from_pandas=True),
        "calls": rng.poisson(2.0 + 4 * shift, size=n),
        "plan": rng.choice(list(plans), size=n, p=list(probs)),
    })  # fmt: skip


def test_profile_is_compact_json_without_rows():
    profile = build_profile(_table(np.random.default_rng(0)), COLUMNS, None)
    assert json.loads(json.dumps(profile)) == profile
    amount = profile["columns"]["amount"]
    assert amount["kind"] == "numeric" and len(amount["points"]) <= QUANTILES
    assert amount["count"] + amount["nulls"] == 20_000 and 0.015 < amount["null_rate"] < 0.025
    assert profile["columns"]["plan"]["categories"].keys() == {"basic", "plus", "pro"}
    assert sum(profile["columns"]["calls"]["psi_ref"]) == pytest.approx(1.0)


def test_identical_distributions_do_not_breach():
    rng = np.random.default_rng(1)
    profile = build_profile(_table(rng), COLUMNS, None)
    report = table_report(profile, _table(rng), data_drift=DATA_DRIFT, max_null_rate=0.05)
    assert not report.breach and report.status == "ok" and report.drifted == []
    assert all(stats["psi"] < 0.01 for stats in report.columns.values())
    assert report.summary == "no breach: 20000 rows, 0 of 3 columns drifted"


def test_shifted_distributions_breach():
    rng = np.random.default_rng(2)
    profile = build_profile(_table(rng), COLUMNS, None)
    report = table_report(profile, _table(rng, shift=0.3, probs=(0.2, 0.3, 0.5)), data_drift=DATA_DRIFT)
    assert report.breach and report.drifted == ["amount", "calls", "plan"]
    assert report.columns["amount"]["ks_pvalue"] < 1e-10 and report.columns["plan"]["chi2_pvalue"] < 1e-10
    assert report.columns["plan"]["psi"] > 0.2
    assert report.reasons[0].startswith("3 columns drifted (min_drifted 1): amount, calls, plan")
    fewer = table_report(profile, _table(rng, probs=(0.2, 0.3, 0.5)), data_drift={**DATA_DRIFT, "min_drifted": 2})
    assert fewer.drifted == ["plan"] and not fewer.breach


def test_unseen_category_is_counted():
    rng = np.random.default_rng(3)
    profile = build_profile(_table(rng), COLUMNS, None)
    live = _table(rng, plans=("basic", "plus", "pro", "enterprise"), probs=(0.5, 0.3, 0.15, 0.05))
    plan = table_report(profile, live, data_drift=DATA_DRIFT).columns["plan"]
    assert plan["unseen_categories"] == ["enterprise"]
    assert plan["unseen_rows"] == int(np.sum(np.asarray(live.column("plan")) == "enterprise")) > 800
    assert plan["drifted"] and plan["chi2_pvalue"] < 1e-10


def test_chi2_and_psi_match_direct_computation():
    rng = np.random.default_rng(4)
    ref, live = _table(rng), _table(rng, probs=(0.45, 0.35, 0.2))
    plan = table_report(build_profile(ref, COLUMNS, None), live, data_drift=DATA_DRIFT).columns["plan"]
    names = ["basic", "plus", "pro"]
    ref_counts = np.array([np.sum(np.asarray(ref.column("plan")) == k) for k in names])
    cur_counts = np.array([np.sum(np.asarray(live.column("plan")) == k) for k in names])
    expected = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    assert plan["chi2_pvalue"] == pytest.approx(expected.pvalue, rel=1e-9)
    p, q = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    assert plan["psi"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-9)


@pytest.mark.parametrize(
    ("make_ref", "make_cur"),
    [
        (lambda r: r.normal(0, 1, 20_000), lambda r: r.normal(0.03, 1, 20_000)),
        (lambda r: r.normal(0, 1, 20_000), lambda r: r.normal(0, 1.05, 20_000)),
        (lambda r: r.lognormal(0, 1, 20_000), lambda r: r.lognormal(0, 1, 20_000)),
        (lambda r: r.uniform(0, 1, 20_000), lambda r: r.uniform(0.01, 1.02, 15_000)),
        (lambda r: r.poisson(3, 20_000), lambda r: r.poisson(3.1, 20_000)),
        (lambda r: r.normal(0, 1, 20_000), lambda r: r.normal(-3, 0.2, 20_000)),
    ],
)
def test_ks_from_sketch_matches_scipy_ks_2samp(make_ref, make_cur):
    rng = np.random.default_rng(5)
    ref, cur = make_ref(rng).astype(float), make_cur(rng).astype(float)
    profile = build_profile(pa.table({"x": ref}), {"x": {"type": "float"}}, None)
    got = table_report(profile, pa.table({"x": cur}), data_drift=DATA_DRIFT).columns["x"]
    exact = stats.ks_2samp(ref, cur, method="asymp")
    assert got["ks"] <= exact.statistic + 1e-12  # a lower bound ...
    assert exact.statistic - got["ks"] <= got["ks_error"] + 1e-12  # ... within the reported error
    assert got["ks_error"] <= 1.5 / (QUANTILES - 1)
    assert got["ks_pvalue"] >= exact.pvalue - 1e-12
    assert (got["ks_pvalue"] < 0.01) == (exact.pvalue < 0.01) or abs(got["ks"] - exact.statistic) < 1e-3


def test_prediction_drift_binary_and_multiclass():
    rng = np.random.default_rng(6)
    table = _table(rng, n=5000)
    scores = rng.beta(2, 5, size=5000)
    profile = build_profile(table, COLUMNS, scores)
    same = table_report(profile, table, rng.beta(2, 5, size=5000), data_drift=None,
                        prediction_drift={"method": "psi", "max": 0.2})  # fmt: skip
    assert not same.breach and same.prediction["statistic"] < 0.05
    moved = table_report(profile, table, rng.beta(5, 2, size=5000), data_drift=None,
                         prediction_drift={"method": "ks", "max": 0.2})  # fmt: skip
    assert moved.breach and moved.prediction["drifted"] and moved.prediction["statistic"] > 0.5
    probs = rng.dirichlet([5, 3, 1], size=5000)
    multi = build_profile(table, COLUMNS, probs)
    assert multi["predictions"]["type"] == "class" and multi["predictions"]["points"] == [0.0, 1.0, 2.0]
    flipped = table_report(multi, table, probs[:, ::-1], data_drift=None, prediction_drift={"method": "js", "max": 0.1})
    assert flipped.breach
    blind = table_report(build_profile(table, COLUMNS, None), table, scores, data_drift=None,
                         prediction_drift={"method": "psi", "max": 0.2})  # fmt: skip
    assert not blind.breach and blind.prediction["note"].startswith("not measured")


def test_quality_performance_and_min_rows():
    rng = np.random.default_rng(7)
    profile = build_profile(_table(rng, n=3000), COLUMNS, None)
    live = _table(rng, n=3000)
    assert table_report(profile, live, data_drift=None, max_null_rate=0.01).quality[0]["column"] == "amount"
    rules = [{"metric": "auc", "min": 0.65, "max": None}]
    bad = table_report(profile, live, data_drift=None, performance=rules, metrics={"auc": 0.6})
    assert bad.breach and bad.reasons == ["performance: auc 0.6 < min 0.65"]
    assert not table_report(profile, live, data_drift=None, performance=rules, metrics={"auc": 0.7}).breach
    unlabelled = table_report(profile, live, data_drift=None, performance=rules, metrics=None)
    assert not unlabelled.breach and unlabelled.performance[0]["status"] == "unknown"
    few = table_report(profile, live.slice(0, 50), data_drift=DATA_DRIFT, min_rows=200)
    assert few.status == "insufficient_data" and not few.breach and "50 rows < min_rows 200" in few.summary


def test_temporal_and_bool_columns():
    start = dt.datetime(2025, 1, 1)
    ref = pa.table({"at": [start + dt.timedelta(hours=i) for i in range(2000)], "flag": [i % 3 == 0 for i in range(2000)]})
    live = pa.table({"at": [start + dt.timedelta(hours=3000 + i) for i in range(2000)], "flag": [True] * 2000})
    columns = {"at": {"type": "timestamp"}, "flag": {"type": "bool"}}
    profile = build_profile(ref, columns, None)
    assert profile["columns"]["flag"]["categories"] == {"false": 1333, "true": 667}
    report = table_report(profile, live, data_drift=DATA_DRIFT)
    assert report.drifted == ["at", "flag"] and report.columns["at"]["ks"] == 1.0


def test_profile_round_trip_gives_same_report_and_missing_columns_fail():
    rng = np.random.default_rng(8)
    profile = build_profile(_table(rng, n=2000), COLUMNS, None)
    live = _table(rng, n=2000, shift=0.1)
    first = table_report(profile, live, data_drift=DATA_DRIFT)
    again = table_report(json.loads(json.dumps(profile)), live, data_drift=DATA_DRIFT, threads=1)
    assert json.dumps(first.to_dict(), sort_keys=True) == json.dumps(again.to_dict(), sort_keys=True)
    with pytest.raises(MonitorError, match="plan of the reference profile are missing"):
        table_report(profile, live.drop(["plan"]), data_drift=DATA_DRIFT)
    with pytest.raises(MonitorError, match="not in the reference profile"):
        table_report(profile, live, data_drift={**DATA_DRIFT, "columns": ["nope"]})


def test_cooldown(tmp_path):
    state = tmp_path / "monitors" / "weekly.json"
    assert cooldown_allows(state, 3600, 1_000_000.0)
    record_trigger(state, 1_000_000.0, details={"reasons": ["drift"]})
    assert not cooldown_allows(state, 3600, 1_000_000.0 + 3599)
    assert cooldown_allows(state, 3600, 1_000_000.0 + 3600)
    record_trigger(state, dt.datetime.fromtimestamp(1_000_100.0, dt.timezone.utc))
    saved = json.loads(state.read_text())
    assert saved["triggers"] == 2 and saved["last_trigger"] == 1_000_100.0 and saved["details"] == {"reasons": ["drift"]}
    state.write_text("{not json")
    with pytest.raises(MonitorError, match="delete the file to reset the cooldown"):
        cooldown_allows(state, 60, 0)


def test_dictionary_encoded_categories_count_like_plain_strings():
    rng = np.random.default_rng(9)
    plain = _table(rng, n=4000)
    chunks = [plain.column("plan").slice(0, 1500).combine_chunks(), plain.column("plan").slice(1500).combine_chunks()]
    encoded = plain.set_column(2, "plan", pa.chunked_array([c.dictionary_encode() for c in chunks]))
    assert build_profile(encoded, COLUMNS, None) == build_profile(plain, COLUMNS, None)


def test_live_column_of_the_wrong_type_is_a_clear_error():
    profile = build_profile(pa.table({"x": [1.0, 2.0, 3.0]}), {"x": {"type": "float"}}, None)
    with pytest.raises(MonitorError, match="column 'x' holds string, not numbers"):
        table_report(profile, pa.table({"x": ["a", "b", "c"]}), data_drift=DATA_DRIFT)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_ref=st.integers(1, 400),
    n_cur=st.integers(1, 400),
    distinct=st.sampled_from([2, 5, 50, 0]),  # 0: continuous values
    quantiles=st.sampled_from([3, 11, 101]),
)
def test_sketch_ks_bounds_hold_for_any_sample(seed, n_ref, n_cur, distinct, quantiles):
    rng = np.random.default_rng(seed)
    draw = (lambda n: rng.normal(size=n)) if distinct == 0 else (lambda n: rng.integers(0, distinct, n).astype(float))
    ref, cur = draw(n_ref), draw(n_cur) + rng.choice([0.0, 0.5, 1.0])
    profile = build_profile(pa.table({"x": ref}), {"x": {"type": "float"}}, None, quantiles=quantiles)
    got = table_report(profile, pa.table({"x": cur}), data_drift=DATA_DRIFT, threads=1).columns["x"]
    exact = stats.ks_2samp(ref, cur).statistic
    assert got["ks"] <= exact + 1e-12
    assert exact <= got["ks"] + got["ks_error"] + 1e-12


def test_a_column_all_null_live_drifts_and_says_why():
    rng = np.random.default_rng(12)
    profile = build_profile(_table(rng, n=3000), COLUMNS, None)
    live = _table(rng, n=3000)
    live = live.set_column(0, "amount", pa.nulls(3000, pa.float64())).set_column(2, "plan", pa.nulls(3000, pa.string()))
    report = table_report(profile, live, data_drift=DATA_DRIFT)
    assert report.breach and report.drifted == ["amount", "plan"]
    assert report.columns["amount"]["psi"] is None and report.columns["plan"]["chi2_pvalue"] is None
    assert report.columns["plan"]["reasons"] == ["every live value is null (reference null rate 0)"]
    assert not table_report(profile, live, data_drift=None).breach  # drift checks off: nothing drifts
