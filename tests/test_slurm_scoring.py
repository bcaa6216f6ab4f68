"""Scoring on a real Slurm cluster: the churn_score plan's job writes the predictions `loopc predict` and the
exported bundle (a fresh interpreter with JAX alone) give, to 1e-6."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from test_score_export import standalone_scores
from test_slurm_engine import EXAMPLE, FAST, compile_churn, make_project, submit, wait_jobs

from loopc.compiler.cli.main import main as loopc
from loopc.runtime.registry.connect import open_registry

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]
MODEL = "churn_classifier"


def test_slurm_scoring_job_matches_predict_and_the_bundle(tmp_path):
    root = make_project(tmp_path / "project")
    out = compile_churn(root, ["model.training.epochs=8", *FAST])
    wait_jobs(submit(out / "churn").values())
    champion = open_registry(root / ".loopc" / "registry.db").get_alias(MODEL, "champion")
    assert champion is not None
    subprocess.run([sys.executable, str(EXAMPLE / "generate.py"), "--root", str(root), "--rows", "400",
                    "--drifted"], check=True, capture_output=True)
    wait_jobs(submit(out / "churn_score").values(), timeout=300)

    folder = root / "predictions" / f"version={champion.version}"
    [batch] = list(folder.iterdir())
    written = ds.dataset(batch).to_table().sort_by("customer_id")
    assert written.num_rows == 400 and set(written.column("model_version").to_pylist()) == {champion.version}
    rows = root / "data" / "incoming" / "batch-001.parquet"
    assert loopc(["predict", f"{MODEL}@{champion.version}", str(rows), "-o", str(tmp_path / "cli"), "--root", str(root),
                  "--keys", "customer_id", "--batch-id", "cli"]) == 0
    cli = ds.dataset(tmp_path / "cli", partitioning="hive").to_table().sort_by("customer_id")
    np.testing.assert_allclose(written.column("score").to_numpy(), cli.column("score").to_numpy(), atol=1e-6, rtol=0)

    assert loopc(["export", f"{MODEL}@{champion.version}", str(tmp_path / "bundle"), "--root", str(root)]) == 0
    order = np.argsort(pq.read_table(rows).column("customer_id").to_numpy(zero_copy_only=False), kind="stable")
    bundle = standalone_scores(tmp_path / "bundle", rows, tmp_path)[order]
    np.testing.assert_allclose(written.column("score").to_numpy(), bundle, atol=1e-6, rtol=0)
