"""Registry operations per second under concurrent writers, SQLite vs PostgreSQL; the churn loop on each setup.

Usage:
    python benchmarks/registry.py ops [--writers 8] [--ops 40] [--postgres URL]
    python benchmarks/registry.py loop [--rounds 3] [--postgres URL] [--s3 http://127.0.0.1:55000]

``ops``: each of N processes registers a version and promotes it (re-reading the champion and retrying
on conflict) ``--ops`` times; reports operations/second per backend (one operation = one committed
transaction: a register, or a promote) and checks the result (one champion, clean verify).
``loop``: the churn example's training plan (1,500 rows) with file:// + SQLite vs S3 + PostgreSQL,
cold (first run) and warm (unchanged rerun: every cacheable step from the store), wall and CPU seconds of
loopc's processes (the S3 and PostgreSQL servers' own CPU is not included), best of the rounds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from loopc.runtime.registry.connect import open_registry
from loopc.runtime.registry.interface import CHAMPION, NO_VERSION, AliasConflict

MODEL = "bench"


def _writer(args: tuple[str, int, int, object]) -> int:
    url, writer, ops, barrier = args
    done = 0
    with open_registry(url) as reg:
        barrier.wait()
        for i in range(ops // 2):
            version = reg.register_version(MODEL, artifact=f"w{writer}-{i}", spec_hash="s", lineage={}, metrics={},
                                           gate=None, actor=f"w{writer}").version
            while True:
                current = reg.get_alias(MODEL, CHAMPION)
                try:
                    reg.promote(MODEL, version, actor=f"w{writer}", reason="bench",
                                expect_current=current.version if current else NO_VERSION)
                    break
                except AliasConflict:
                    continue
            done += 2
    return done


def ops_per_second(url: str, writers: int, ops: int) -> float:
    open_registry(url).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(writers + 1)
        with ctx.Pool(writers) as pool:
            pending = pool.map_async(_writer, [(url, w, ops, barrier) for w in range(writers)])
            barrier.wait()
            start = time.perf_counter()
            total = sum(pending.get())
            elapsed = time.perf_counter() - start
    with open_registry(url, read_only=True) as reg:
        champions = [v for v in reg.versions(MODEL) if v.status == CHAMPION]
        assert len(champions) == 1 and reg.verify() == [], "inconsistent registry after the benchmark"
    return total / elapsed


def _fresh_database(server: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(server)._replace(path=f"/{name}"))


def run_ops(args) -> None:
    with tempfile.TemporaryDirectory() as folder:
        backends = {"sqlite": f"sqlite:///{folder}/registry.db"}
        if args.postgres:
            backends["postgresql"] = _fresh_database(args.postgres)
        for name, url in backends.items():
            rate = ops_per_second(url, args.writers, args.ops)
            print(f"{name:10s} {args.writers} writers x {args.ops} ops: {rate:7.1f} committed operations/s")


def _loop_once(project: Path, env: dict[str, str], run_id: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the run's processes) of one ``loopc run`` of the training plan."""
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "loopc.compiler.cli.main", "run", str(project / "pipeline.yaml"),
                           "model.training.epochs=12", "--run-id", run_id, "--jobs", "1"],
                          env={**os.environ, **env}, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"loopc run failed ({run_id}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _remote_setup(args) -> dict[str, str]:
    """A fresh bucket and a fresh database: the environment that sends a run's state there."""
    import pyarrow.fs as pafs

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    scheme, host = args.s3.split("://", 1)
    pafs.S3FileSystem(endpoint_override=host, scheme=scheme, allow_bucket_creation=True).create_dir(bucket)
    return {"LOOPC_STORE": f"s3://{bucket}/churn", "LOOPC_REGISTRY": _fresh_database(args.postgres),
            "AWS_ENDPOINT_URL": args.s3}


def run_loop(args) -> None:
    """Each setup in turn, ``--rounds`` times (alternating, so load drifts hit both alike); the best of each."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_e2e_loop import make_project

    setups = {"file:// + SQLite": dict}
    if args.postgres and args.s3:
        setups["S3 + PostgreSQL"] = lambda: _remote_setup(args)
    best: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for number, (name, fresh) in enumerate(setups.items()):
                project, env = make_project(Path(folder) / f"p{round_}-{number}"), fresh()
                runs = [_loop_once(project, env, "cold"), _loop_once(project, env, "warm")]
                best[name] = [min(pair) for pair in zip(best.get(name, runs), runs)]
                print(f"round {round_}: {name:16s} cold {runs[0][0]:5.1f} s ({runs[0][1]:5.1f} s CPU)   "
                      f"warm {runs[1][0]:5.1f} s ({runs[1][1]:5.1f} s CPU)", flush=True)
    for name, ((cold, cold_cpu), (warm, warm_cpu)) in best.items():
        print(f"best: {name:16s} cold {cold:5.1f} s ({cold_cpu:5.1f} s CPU)   warm {warm:5.1f} s ({warm_cpu:5.1f} s CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["ops", "loop"])
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--ops", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3, help="loop: runs of each setup, alternating")
    parser.add_argument("--postgres", default=os.environ.get("LOOPC_TEST_POSTGRES_URL"))
    parser.add_argument("--s3", default=os.environ.get("LOOPC_TEST_S3_ENDPOINT"))
    args = parser.parse_args()
    run_ops(args) if args.what == "ops" else run_loop(args)


if __name__ == "__main__":
    main()
