"""Deterministic synthetic churn data matching dataset/customers.yaml (numpy + pyarrow only, no downloads).

    python generate.py --root DIR [--rows N] [--seed S] [--batch K] [--drifted [--append]]

Writes DIR/data/customers/batch-K.parquet; with --drifted a later batch with shifted
distributions, an unseen payment method and a changed label relationship goes to
DIR/data/incoming/batch-K.parquet (and, with --append, to the training folder too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATASET_DIR = "customers"
CONTRACTS = ["monthly", "annual", "two_year"]
PAYMENTS = ["card", "bank_transfer", "electronic_check", "mailed_check"]
REGIONS = ["north", "south", "east", "west"]
GENDERS = ["female", "male", "nonbinary"]
START = dt.datetime(2025, 1, 31, tzinfo=dt.timezone.utc)


def _mix(drifted: bool) -> dict:
    """Category shares and effects; the drifted mix moves them and the label relationship."""
    if not drifted:
        return {"contract": [0.5, 0.3, 0.2], "payment": [0.35, 0.3, 0.25, 0.1, 0.0], "charge_shift": 0.0,
                "tenure_effect": -0.045, "calls_effect": 0.35, "charge_effect": 0.025, "intercept": -1.5}
    return {"contract": [0.75, 0.15, 0.1], "payment": [0.25, 0.2, 0.25, 0.05, 0.25], "charge_shift": 18.0,
            "tenure_effect": -0.02, "calls_effect": 0.6, "charge_effect": 0.01, "intercept": -1.9}


def _logit(tenure, charges, calls, contract, payment, mix) -> np.ndarray:
    """Churn log-odds: a logistic model of tenure, contract, charges, support calls and payment."""
    contract_effect = np.array([0.9, -0.4, -1.2])[contract]
    payment_effect = np.array([0.0, -0.1, 0.6, 0.1, 1.0])[payment]
    signal = (mix["tenure_effect"] * (np.minimum(tenure, 120) - 24) + contract_effect + payment_effect
              + mix["charge_effect"] * (charges - 70) + mix["calls_effect"] * (calls - 1.5))
    return mix["intercept"] + 0.8 * signal


def _genders(rng, logit: np.ndarray) -> np.ndarray:
    """Genders dealt round-robin along the risk order, so every group has the same risk profile."""
    pattern = np.repeat([0, 1, 2], [9, 9, 7])
    rng.shuffle(pattern)
    dealt = np.empty(len(logit), np.int64)
    dealt[np.argsort(logit, kind="stable")] = pattern[np.arange(len(logit)) % len(pattern)]
    return np.array(GENDERS)[dealt]


def make_table(rows: int, seed: int, batch: int, drifted: bool) -> pa.Table:
    """One batch of ``rows`` customers; the same arguments always give the same table."""
    rng = np.random.default_rng([seed, batch, int(drifted)])
    mix = _mix(drifted)
    contract = rng.choice(3, rows, p=mix["contract"])
    payment = rng.choice(5, rows, p=mix["payment"])
    tenure = np.minimum(rng.gamma(1.6, 18.0, rows) * np.array([0.7, 1.3, 1.8])[contract], 600).astype(np.int64)
    charges = np.clip(rng.normal(70 + mix["charge_shift"], 22, rows), 18, 400).round(2)
    calls = np.minimum(rng.poisson(1.2 + 0.8 * (contract == 0), rows), 100).astype(np.int64)
    total = (charges * (tenure + 1) * rng.uniform(0.98, 1.06, rows)).round(2)
    total_mask = rng.random(rows) < 0.02
    logit = _logit(tenure, charges, calls, contract, payment, mix)
    churned = rng.random(rows) < 1 / (1 + np.exp(-logit))
    snapshot = START + dt.timedelta(days=30 * batch)
    columns = {
        "customer_id": pa.array([f"c{batch:03d}-{i:06d}" for i in range(rows)], pa.string()),
        "snapshot_date": pa.array(np.full(rows, np.datetime64(snapshot.replace(tzinfo=None), "us")),
                                  pa.timestamp("us", tz="UTC")),
        "tenure_months": pa.array(tenure, pa.int64()),
        "monthly_charges": pa.array(charges, pa.float64()),
        "total_charges": pa.array(total, pa.float64(), mask=total_mask),
        "support_calls": pa.array(calls, pa.int64()),
        "contract": pa.array(np.array(CONTRACTS)[contract], pa.string()),
        "payment_method": pa.array(np.array(PAYMENTS + ["crypto"])[payment], pa.string()),
        "region": pa.array(np.array(REGIONS)[rng.choice(4, rows)], pa.string()),
        "gender": pa.array(_genders(rng, logit), pa.string()),
        "churned": pa.array(churned, pa.bool_()),
    }
    return pa.table(columns)


def _write(table: pa.Table, path: Path) -> Path:
    """Write atomically: a temporary file beside the target, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def generate(root, rows: int = 4000, seed: int = 42, batch: int | None = None, drifted: bool = False,
             append: bool = False) -> list[Path]:
    """Write one batch under ``root``; return the files written."""
    batch = (1 if drifted else 0) if batch is None else batch
    table = make_table(rows, seed, batch, drifted)
    data, name = Path(root) / "data", f"batch-{batch:03d}.parquet"
    if not drifted:
        return [_write(table, data / DATASET_DIR / name)]
    written = [_write(table, data / "incoming" / name)]
    if append:
        written.append(_write(table, data / DATASET_DIR / name))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="project directory (data/ is written under it)")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch", type=int, default=None, help="batch number (default 0, or 1 with --drifted)")
    parser.add_argument("--drifted", action="store_true", help="a later batch with shifted distributions")
    parser.add_argument("--append", action="store_true", help="with --drifted: also add it to the training data")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    for path in generate(args.root, args.rows, args.seed, args.batch, args.drifted, args.append):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
