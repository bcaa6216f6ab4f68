"""Shared pytest fixtures: where the real engines are (skip locally, fail in CI with LOOPC_REQUIRE_ENGINES=1)."""

from __future__ import annotations

import os

import pytest


def engine_missing(message: str) -> None:
    """Skip a test whose engine is absent, or fail it when CI requires every engine."""
    if os.environ.get("LOOPC_REQUIRE_ENGINES") == "1":
        pytest.fail(f"{message} (LOOPC_REQUIRE_ENGINES=1: engine tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def airflow_python() -> str:
    """The interpreter of a real Apache Airflow 3 venv, from $LOOPC_AIRFLOW_PYTHON (see ci/install-airflow.sh)."""
    path = os.environ.get("LOOPC_AIRFLOW_PYTHON", "")
    if not path or not os.access(path, os.X_OK):
        engine_missing(f"no Airflow interpreter at LOOPC_AIRFLOW_PYTHON={path!r}; run ci/install-airflow.sh")
    return path


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """A real Slurm controller answering sbatch/sinfo (ci/slurm-up.sh starts one)."""
    import shutil
    import subprocess

    if not (shutil.which("sbatch") and shutil.which("sinfo")):
        engine_missing("sbatch/sinfo not on PATH; run ci/slurm-up.sh (as root) to start a single-node Slurm")
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        engine_missing(f"sinfo does not answer ({done.stderr.strip()}); run ci/slurm-up.sh")
