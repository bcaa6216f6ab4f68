"""Deterministic synthetic store sales matching dataset/store_sales.yaml (numpy + pyarrow only, no downloads).

    python generate.py --root DIR [--rows N] [--seed S] [--batch K] [--drifted [--append]]

Writes DIR/data/sales/batch-K.parquet; with --drifted a later batch with higher prices
and temperatures, an unseen product family and a changed price/promotion response goes
to DIR/data/incoming/batch-K.parquet (and, with --append, to the training folder too).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATASET_DIR = "sales"
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
FAMILIES = ["grocery", "dairy", "produce", "beverages", "cleaning", "bakery"]
FAMILY_LEVEL = np.array([16.0, 10.0, 12.0, 9.0, 5.0, 7.0, 8.0])  # the last: 'pet_supplies', drifted only
FAMILY_PRICE = np.array([4.0, 3.0, 2.5, 2.0, 6.0, 3.5, 9.0])
DAY_EFFECT = np.array([-1.0, -1.5, -1.0, -0.5, 1.0, 3.0, 2.0])
STORES = 20
START = dt.date(2025, 1, 6)


def _mix(drifted: bool) -> dict:
    """Distribution and response settings; the drifted mix moves both."""
    if not drifted:
        return {"families": 6, "price_scale": 1.0, "temp_shift": 0.0, "promo_effect": 5.0,
                "price_effect": -8.0, "promo_rate": 0.2}
    return {"families": 7, "price_scale": 1.35, "temp_shift": 8.0, "promo_effect": 2.0,
            "price_effect": -12.0, "promo_rate": 0.35}


def make_table(rows: int, seed: int, batch: int, drifted: bool) -> pa.Table:
    """One batch of ``rows`` store/family/day rows; the same arguments always give the same table."""
    rng = np.random.default_rng([seed, batch, int(drifted)])
    mix = _mix(drifted)
    days = max(rows // 100, 7)
    offset = np.sort(rng.integers(0, days, rows)) + days * batch
    dates = np.datetime64(START, "D") + offset
    weekday = (offset + START.weekday()) % 7
    family = rng.choice(mix["families"], rows)
    store = rng.integers(0, STORES, rows)
    store_effect = np.linspace(-3, 3, STORES)[store]
    price = (FAMILY_PRICE[family] * mix["price_scale"] * rng.lognormal(0, 0.25, rows)).round(2)
    relative_price = np.log(price / FAMILY_PRICE[family])
    promo = (rng.random(rows) < mix["promo_rate"]).astype(np.int64)
    season = 12 + 10 * np.sin(2 * np.pi * offset / 365.0)
    temperature = np.clip(season + mix["temp_shift"] + rng.normal(0, 4, rows), -40, 55).round(1)
    level = FAMILY_LEVEL[family] + store_effect + DAY_EFFECT[weekday]
    lag = np.maximum(level + rng.normal(0, 2.0, rows), 0).round(1)
    units = (level + 0.4 * (lag - level) + mix["promo_effect"] * promo + mix["price_effect"] * relative_price
             + 0.15 * (temperature - 12) + rng.normal(0, 2.0, rows))
    columns = {
        "date": pa.array(dates.astype("datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "store_id": pa.array([f"s{s:02d}" for s in store], pa.string()),
        "family": pa.array(np.array(FAMILIES + ["pet_supplies"])[family], pa.string()),
        "day_of_week": pa.array(np.array(DAYS)[weekday], pa.string()),
        "price": pa.array(price, pa.float64()),
        "on_promotion": pa.array(promo, pa.int64()),
        "temperature": pa.array(temperature, pa.float64(), mask=rng.random(rows) < 0.03),
        "units_lag_7": pa.array(lag, pa.float64()),
        "units": pa.array(np.maximum(units, 0).round(1), pa.float64()),
    }
    return pa.table(columns)


def _write(table: pa.Table, path: Path) -> Path:
    """Write atomically: a temporary file beside the target, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, temporary)
    os.replace(temporary, path)
    return path


def generate(root, rows: int = 4000, seed: int = 7, batch: int | None = None, drifted: bool = False,
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
    parser.add_argument("--seed", type=int, default=7)
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
