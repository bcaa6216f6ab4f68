"""Store and registry locations: spec fields, compile flags, every emitted job, run-time overrides, loopc doctor."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from loopc.compiler.cli.main import main
from loopc.compiler.cli.toolchain import mismatches, toolchain
from loopc.runtime.execution.locations import compiled_locations
from loopc.runtime.execution.step import load_step

REPO = Path(__file__).resolve().parents[1]
CHURN = REPO / "specs" / "examples" / "churn"
STORE, REGISTRY = "s3://bucket/churn", "postgresql://loopc@db.internal:5432/loopc"


def _cli(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


@pytest.mark.parametrize("field, value, message", [
    ("registry", "postgresql://u:hunter2@db/loopc", "a spec names places, not secrets"),
    ("registry", "postgresql://db/loopc?password=x", "a spec names places, not secrets"),
    ("store", "s3://b/p?secret_key=x", "a spec names places, not secrets"),
    ("store", "ftp://host/p", "needs one of the schemes file://, s3://"),
    ("registry", "mysql://db/x", "needs one of the schemes postgresql://"),
    ("store", "s3://b/$(reboot)", "is not a plain URL"),
])
def test_spec_locations_refuse_secrets_and_unknown_schemes(field, value, message, tmp_path, capsys):
    spec = _churn_with(tmp_path, **{field: value})
    code, lines = _cli(capsys, "validate", str(spec))
    assert code == 1 and f"{spec}:" in lines[0] and f"LPC107 pipeline.{field}: " in lines[0], lines
    assert message in lines[0]


def _churn_with(folder: Path, **pipeline: str) -> Path:
    """A copy of the churn example whose pipeline section also holds ``pipeline``."""
    shutil.copytree(CHURN, folder / "churn", ignore=shutil.ignore_patterns("data", ".loopc", "__pycache__"))
    spec = folder / "churn" / "pipeline.yaml"
    tree = yaml.safe_load(spec.read_text(encoding="utf-8"))
    tree["pipeline"].update(pipeline)
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return spec


@pytest.mark.parametrize("target", ["local", "airflow", "slurm"])
def test_every_emitted_step_of_every_target_carries_the_locations(target, tmp_path, capsys):
    out = tmp_path / target
    code, _ = _cli(capsys, "compile", str(CHURN), "-t", target, "-o", str(out), "--store", STORE,
                   "--registry", REGISTRY)
    assert code == 0
    steps = sorted(out.glob("*/steps/*.json"))
    assert steps and all((load_step(p).store, load_step(p).registry) == (STORE, REGISTRY) for p in steps)
    for plan in out.glob("*/plan.json"):
        assert json.loads(plan.read_text())["store"] == STORE
    assert json.loads((out / ".loopc-manifest.json").read_text())["toolchain"] == toolchain()


def test_spec_fields_reach_the_steps_and_flags_override_them(tmp_path, capsys):
    out = tmp_path / "o"
    spec = _churn_with(tmp_path, store="gs://spec/p", registry=REGISTRY)
    assert _cli(capsys, "compile", str(spec), "-o", str(out))[0] == 0
    assert load_step(next(out.glob("churn/steps/*.json"))).store == "gs://spec/p"
    assert _cli(capsys, "compile", str(spec), "-o", str(out), "--store", STORE)[0] == 0
    assert load_step(next(out.glob("churn/steps/*.json"))).store == STORE
    code, lines = _cli(capsys, "compile", str(CHURN), "-o", str(out), "--registry", "postgresql://u:pw@db/x")
    assert code == 2 and "--registry: a spec names places, not secrets" in lines[-1]


def test_without_locations_step_documents_are_unchanged(tmp_path, capsys):
    assert _cli(capsys, "compile", str(CHURN), "-o", str(tmp_path))[0] == 0
    document = json.loads(next(tmp_path.glob("churn/steps/*.json")).read_text())
    assert "store" not in document and "registry" not in document


def test_the_environment_overrides_the_compiled_locations(tmp_path, capsys, monkeypatch):
    assert _cli(capsys, "compile", str(CHURN), "-o", str(tmp_path), "--store", STORE, "--registry", REGISTRY)[0] == 0
    doc = load_step(next(tmp_path.glob("churn/steps/*.json")))
    monkeypatch.setenv("LOOPC_STORE", "")  # unset (and restored by monkeypatch)
    monkeypatch.setenv("LOOPC_REGISTRY", "sqlite:///elsewhere.db")
    with compiled_locations(doc):
        assert os.environ["LOOPC_STORE"] == STORE and os.environ["LOOPC_REGISTRY"] == "sqlite:///elsewhere.db"
    assert os.environ["LOOPC_STORE"] == "" and os.environ["LOOPC_REGISTRY"] == "sqlite:///elsewhere.db"
    monkeypatch.delenv("LOOPC_STORE")
    with compiled_locations(doc):
        assert os.environ["LOOPC_STORE"] == STORE
    assert "LOOPC_STORE" not in os.environ


def test_toolchain_mismatches_name_each_version():
    here = {"python": "3.11.7", "jax": "0.4.38", "loopc": "0.1.0"}
    assert mismatches({**here, "python": "3.11.2"}, here) == []
    lines = mismatches({"python": "3.12.1", "jax": "0.4.30", "loopc": "0.1.0"}, here)
    assert [line.split(" ")[0] for line in lines] == ["Python", "JAX"]
    assert "JAX 0.4.38 here, but the plans were compiled with JAX 0.4.30" in lines[1]


@pytest.fixture
def compiled(tmp_path, capsys) -> Path:
    out = tmp_path / "compiled"
    assert _cli(capsys, "compile", str(CHURN), "-o", str(out))[0] == 0
    return out


def test_doctor_passes_on_a_healthy_local_worker(compiled, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOOPC_STORE", raising=False)
    monkeypatch.delenv("LOOPC_REGISTRY", raising=False)
    code, lines = _cli(capsys, "doctor", str(compiled), "--root", str(tmp_path / "worker"))
    assert code == 0 and lines[0].startswith(f"ok: store {tmp_path / 'worker' / '.loopc'} writable")
    assert lines[-1].startswith("ok: Python, JAX and loopc as compiled")


def test_doctor_reports_a_healthy_store_beside_a_toolchain_problem(compiled, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOOPC_STORE", raising=False)
    monkeypatch.delenv("LOOPC_REGISTRY", raising=False)
    manifest = compiled / ".loopc-manifest.json"
    data = json.loads(manifest.read_text())
    data["toolchain"] = {**data["toolchain"], "jax": "0.0.1"}
    manifest.write_text(json.dumps(data))
    code, lines = _cli(capsys, "doctor", str(compiled), "--root", str(tmp_path / "worker"))
    assert code == 1 and lines[0].startswith(f"ok: store {tmp_path / 'worker' / '.loopc'} writable")
    assert lines[1:] and all(line.startswith("problem: JAX") for line in lines[1:])


def test_doctor_names_each_problem_on_one_line(compiled, tmp_path, capsys):
    manifest = compiled / ".loopc-manifest.json"
    data = json.loads(manifest.read_text())
    data["toolchain"] = {**data["toolchain"], "python": "2.7.18", "jax": "0.0.1"}
    manifest.write_text(json.dumps(data))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    registry = tmp_path / "r.db"
    registry.write_bytes(b"")
    code, lines = _cli(capsys, "doctor", str(compiled), "--store", str(blocker / "store"),
                       "--registry", f"sqlite:///{registry}")
    assert code == 1 and len(lines) == 4 and all(line.startswith("problem: ") for line in lines)
    assert "Python" in lines[0] and "JAX" in lines[1]
    assert f"artifact store file://{blocker / 'store'}" in lines[2]
    assert f"registry {registry} is an empty file" in lines[3]


def test_doctor_checks_postgres_is_migrated_and_s3_is_writable(compiled, postgres_url, s3_endpoint, capsys,
                                                               monkeypatch):
    import uuid

    import pyarrow.fs as pafs

    bucket = f"loopc-{uuid.uuid4().hex[:12]}"
    scheme, host = s3_endpoint.split("://", 1)
    pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True).create_dir(bucket)
    for name, value in (("AWS_ENDPOINT_URL", s3_endpoint), ("AWS_ACCESS_KEY_ID", "test"),
                        ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, os.environ.get(name, value) if name != "AWS_ENDPOINT_URL" else value)
    monkeypatch.setenv("LOOPC_STORE", f"s3://{bucket}/churn")
    monkeypatch.setenv("LOOPC_REGISTRY", postgres_url)
    code, lines = _cli(capsys, "doctor", str(compiled))
    assert code == 1 and lines == [f"problem: no loopc registry in {postgres_url} (the database has no loopc tables); "
                                   "create it with `loopc registry migrate --registry URL` or run the loop"]
    assert _cli(capsys, "registry", "migrate", "--registry", postgres_url)[0] == 0
    code, lines = _cli(capsys, "doctor", str(compiled))
    assert code == 0 and lines[0] == f"ok: store s3://{bucket}/churn writable, registry {postgres_url} reachable and migrated"
    monkeypatch.setenv("LOOPC_STORE", f"s3://missing-{bucket}/churn")
    code, lines = _cli(capsys, "doctor", str(compiled))
    assert code == 1 and "cannot write a probe object" in lines[0] and "bucket does not exist" in lines[0]



def test_doctor_asks_to_migrate_a_registry_with_an_older_schema(compiled, postgres_url, tmp_path, capsys,
                                                                monkeypatch):
    import psycopg

    from loopc.runtime.registry.postgres_schema import MIGRATIONS, SCHEMA_VERSION

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in MIGRATIONS[1]:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 'then')")
    monkeypatch.delenv("LOOPC_STORE", raising=False)
    monkeypatch.setenv("LOOPC_REGISTRY", postgres_url)
    code, lines = _cli(capsys, "doctor", str(compiled), "--root", str(tmp_path / "worker"))
    assert code == 1 and lines == [f"problem: registry {postgres_url} has schema version 1, this loopc uses "
                                   f"{SCHEMA_VERSION}: run `loopc registry migrate --registry URL`"]
    assert _cli(capsys, "registry", "migrate", "--registry", postgres_url)[0] == 0
    assert _cli(capsys, "doctor", str(compiled), "--root", str(tmp_path / "worker"))[0] == 0

def test_doctor_without_a_compiled_plan_is_a_usage_error(tmp_path, capsys):
    code, lines = _cli(capsys, "doctor", str(tmp_path))
    assert code == 2 and "no compiled plan here" in lines[-1]
    shutil.rmtree(tmp_path)
