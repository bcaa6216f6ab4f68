"""The loop closed: scored batches, labels arriving a window later, a planted concept drift (labels change,
inputs do not) that input drift cannot see and the performance monitor flags, then retraining, gate,
promotion, and the next batch scored by the new champion."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml

from loopc.compiler.cli.run import compile_local
from loopc.runtime.execution.executor import run_plan
from loopc.runtime.registry.interface import CHAMPION
from tests.test_e2e_loop import EXAMPLE, MODEL, SMALL, make_project, quiet, registry, run

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]
ROWS = 1500
LABELS = {"source": {"path": "data/labels/*.parquet"}, "predictions": "predictions", "keys": ["customer_id"],
          "window": "30d", "min_rows": 200, "max_drop": {"auc": 0.1}}


def generator():
    spec = importlib.util.spec_from_file_location("churn_generate", EXAMPLE / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def configure(project: Path) -> None:
    """A monitor that reads late labels; shadow agreement off (after a concept flip the models must disagree)."""
    spec_file = project / "pipeline.yaml"
    spec = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
    spec["deploy"]["shadow"]["min_agreement"] = 0.0
    spec["monitors"]["weekly_drift"]["labels"] = LABELS
    spec["monitors"]["weekly_drift"]["performance"] = [{"metric": "auc", "min": 0.65}]
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")


def arrive(project: Path, batch: int, *, flipped: bool) -> None:
    """Batch ``batch`` arrives for scoring (inputs only, same distribution as training); its labels are
    kept back and written by :func:`label`."""
    table = generator().make_table(ROWS, 42, batch, False)
    pq.write_table(table.drop_columns(["churned"]), _fresh(project / "data" / "incoming") / f"batch-{batch:03d}.parquet")
    labels = table.select(["customer_id", "churned"])
    if flipped:  # the concept drift: the same customers, the opposite outcome
        labels = labels.set_column(1, "churned", pc.invert(labels.column("churned")))
    pq.write_table(labels, project / f"labels-{batch:03d}.parquet")


def label(project: Path, batch: int) -> None:
    """The labels of ``batch`` arrive (a window after its scoring)."""
    folder = project / "data" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    (project / f"labels-{batch:03d}.parquet").rename(folder / f"batch-{batch:03d}.parquet")


def _labels_of_first_rows(project: Path, batch: int, rows: int) -> Path:
    """The labels of the first ``rows`` rows of ``batch`` arrive early; returns their file."""
    folder = project / "data" / "labels"
    folder.mkdir(parents=True, exist_ok=True)
    early = folder / f"early-{batch:03d}.parquet"
    pq.write_table(pq.read_table(project / f"labels-{batch:03d}.parquet").slice(0, rows), early)
    return early


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    return folder


def score(project: Path, run_id: str):
    result = run_plan(compile_local(project / "pipeline.yaml", SMALL)[0].score_plan, project, run_id, jobs=1,
                      progress=quiet())
    assert result.ok, result.records
    return result


def verdict(result) -> dict:
    return result.records["monitor.weekly_drift"]["outputs"]


def retraining_data(project: Path) -> None:
    """What the team trains on after the labels came back: the new concept's labelled rows."""
    make = generator().make_table
    folder = _fresh(project / "data" / "customers")
    for batch in (10, 11):
        table = make(ROWS, 42, batch, False)
        pq.write_table(table.set_column(table.column_names.index("churned"), "churned",
                                        pc.invert(table.column("churned"))), folder / f"batch-{batch:03d}.parquet")


def test_concept_drift_is_caught_by_labels_and_retraining_promotes_a_new_champion(tmp_path):
    project = make_project(tmp_path / "churn")
    configure(project)
    assert run(project, run_id="train1").ok
    with registry(project) as reg:
        v1 = reg.get_alias(MODEL, CHAMPION).version

    arrive(project, 1, flipped=False)
    score(project, "score1")
    early = run(project, monitor=True, run_id="watch0")  # scored, no label has arrived yet: nothing to judge
    assert early.ok and not verdict(early)["breach"], verdict(early)
    early_details = json.loads((project / ".loopc" / early.records["monitor.weekly_drift"]["artifact"] / "drift.json")
                               .read_text())
    assert {c["status"] for c in early_details["performance"]} == {"unknown"}, early_details["performance"]
    assert all("no labels yet" in c["detail"] for c in early_details["performance"])
    few = _labels_of_first_rows(project, 1, LABELS["min_rows"] - 1)  # some labels, fewer than labels.min_rows
    scant = run(project, monitor=True, run_id="watch_few")
    assert scant.ok and not verdict(scant)["breach"], verdict(scant)
    scant_details = json.loads((project / ".loopc" / scant.records["monitor.weekly_drift"]["artifact"] /
                                "drift.json").read_text())
    assert [c["status"] for c in scant_details["performance"]] == ["unknown"] * 2, scant_details["performance"]
    assert all(c["passed"] is None and f"{LABELS['min_rows'] - 1} labelled prediction(s) of version {v1}, "
               "fewer than labels.min_rows" in c["detail"] for c in scant_details["performance"])
    assert "performance not judged" in verdict(scant)["summary"]
    assert scant_details["realized"][str(v1)]["rows"] == LABELS["min_rows"] - 1
    assert not any("none of the" in c["detail"] for c in scant_details["performance"])
    few.unlink()
    unmatched = project / "data" / "labels" / "unmatched.parquet"  # labels whose keys no scored row has
    table = pq.read_table(project / "labels-001.parquet")
    pq.write_table(table.set_column(0, "customer_id", pc.utf8_upper(table.column("customer_id"))), unmatched)
    stranger = run(project, monitor=True, run_id="watch_unmatched")
    stranger_details = json.loads((project / ".loopc" / stranger.records["monitor.weekly_drift"]["artifact"] /
                                   "drift.json").read_text())
    assert all(f"none of the {ROWS} labelled rows has the customer_id of a stored prediction" in c["detail"]
               for c in stranger_details["performance"]), stranger_details["performance"]
    unmatched.unlink()
    label(project, 1)
    calm = run(project, monitor=True, run_id="watch1")
    assert not verdict(calm)["breach"], verdict(calm)
    details = json.loads((project / ".loopc" / calm.records["monitor.weekly_drift"]["artifact"] / "drift.json")
                         .read_text())
    assert details["realized"][str(v1)]["rows"] == ROWS and details["realized"][str(v1)]["metrics"]["auc"] > 0.7
    assert details["live_rows_scored"] is False, "prediction drift reads the stored scores; live rows need none"
    assert details["prediction"]["statistic"] is not None

    arrive(project, 2, flipped=True)
    score(project, "score2")
    label(project, 2)
    retraining_data(project)
    flagged = run(project, monitor=True, run_id="watch2")
    outputs = verdict(flagged)
    assert outputs["breach"] and outputs["action"] == "retrain", outputs
    assert outputs["drifted"] == 0, "input drift must not see a change of labels alone"
    details = json.loads((project / ".loopc" / flagged.records["monitor.weekly_drift"]["artifact"] / "drift.json")
                         .read_text())
    assert details["realized"][str(v1)]["rows"] == 2 * ROWS
    failed = [c for c in details["performance"] if c["status"] == "failed"]
    assert {c["metric"] for c in failed} == {"auc"} and len(failed) == 2, details["performance"]  # threshold + drop

    assert flagged.triggered is not None and flagged.triggered.ok, flagged.triggered.records
    with registry(project) as reg:
        champion = reg.get_alias(MODEL, CHAMPION)
        assert champion.version != v1 and champion.status == "champion"
        assert reg.version(MODEL, champion.version).gate["passed"]

    arrive(project, 3, flipped=True)
    score(project, "score3")
    written = ds.dataset(project / "predictions", partitioning="hive").to_table()
    versions = dict(zip(written.column("batch").to_pylist(), written.column("model_version").to_pylist()))
    assert versions == {"score1": v1, "score2": v1, "score3": champion.version}
    label(project, 3)
    after = run(project, monitor=True, run_id="watch3")
    realized = json.loads((project / ".loopc" / after.records["monitor.weekly_drift"]["artifact"] / "drift.json")
                          .read_text())["realized"]
    assert realized[str(champion.version)]["metrics"]["auc"] > 0.7 > realized[str(v1)]["metrics"]["auc"]
    assert np.isfinite(realized[str(champion.version)]["metrics"]["log_loss"])
