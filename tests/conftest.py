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
def chromium() -> str:
    """Debian's headless Chromium ($LOOPC_CHROMIUM, else ``chromium`` on PATH; ci/chromium-up.sh installs it)."""
    import shutil

    path = os.environ.get("LOOPC_CHROMIUM") or shutil.which("chromium") or ""
    if not path or not os.access(path, os.X_OK):
        engine_missing("no chromium on PATH (nor LOOPC_CHROMIUM); run ci/chromium-up.sh (apt-get install chromium)")
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


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """URL of a real PostgreSQL server with a database loopc may create databases from ($LOOPC_TEST_POSTGRES_URL)."""
    url = os.environ.get("LOOPC_TEST_POSTGRES_URL", "")
    if not url:
        engine_missing("no PostgreSQL: set LOOPC_TEST_POSTGRES_URL (ci/postgres-up.sh starts one on loopback)")
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.Error as error:
        engine_missing(f"PostgreSQL at LOOPC_TEST_POSTGRES_URL does not answer: {error}")
    return url


@pytest.fixture
def postgres_url(postgres_server: str):
    """A fresh, empty database on the test server for one test (dropped afterwards)."""
    import uuid
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield urlunsplit(urlsplit(postgres_server)._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path) -> str:
    """A new, empty registry's URL on each backend: a SQLite file under tmp_path, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state/registry.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """An S3-compatible endpoint ($LOOPC_TEST_S3_ENDPOINT, e.g. ci/s3-up.sh's moto server) with test credentials."""
    endpoint = os.environ.get("LOOPC_TEST_S3_ENDPOINT", "")
    if not endpoint:
        engine_missing("no S3 endpoint: set LOOPC_TEST_S3_ENDPOINT (ci/s3-up.sh starts one on loopback)")
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(endpoint, timeout=5).close()
    except (urllib.error.URLError, OSError) as error:
        if not isinstance(error, urllib.error.HTTPError):
            engine_missing(f"S3 endpoint {endpoint} does not answer: {error}")
    return endpoint
