"""Front-end benchmark: validate a repository of N pipelines (ROADMAP goal: 1,000 in <= 5 s).

Copies the churn and demand examples N/2 times each into a temporary repository (every copy with its
own config groups and a unique pipeline name), then times ``load_project`` on the whole tree:
discovery, parsing with positions, composition, pydantic validation and cross-reference checks.
For context it also times Hydra's compose API on a sample of the same files. With the validate cache
(``loopc validate --cache``) it times a cold run that fills the cache, a warm run with nothing changed,
and a re-validate after one config-group file changed (a different pipeline's file each repeat).
Run: ``python benchmarks/validate.py [--pipelines N] [--repeat R] [--hydra-sample S] [--jobs J] [--no-cache]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from loopc.compiler.api import load_project
from loopc.compiler.spec.cache import ValidateCache

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"


def build_repository(root: Path, count: int) -> None:
    """``count`` pipelines under ``root``, alternating the two examples."""
    for index in range(count):
        example = ("churn", "demand")[index % 2]
        target = root / f"team{index % 10}" / f"{example}_{index}"
        shutil.copytree(EXAMPLES / example, target, ignore=shutil.ignore_patterns("data", "*.py", ".loopc"))
        pipeline = target / "pipeline.yaml"
        pipeline.write_text(pipeline.read_text().replace(f"  name: {example}\n", f"  name: {example}_{index}\n", 1))


def time_front_end(root: Path, repeat: int, jobs: int | None) -> list[float]:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        loaded = load_project(root, jobs=jobs)
        timings.append(time.perf_counter() - start)
    assert len({item.spec.pipeline.name for item in loaded}) == len(loaded)
    return timings


def time_cache(root: Path, cache_dir: Path, repeat: int, jobs: int | None) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds, best of ``repeat``: no cache, cold (fills the cache), warm (nothing changed),
    one config-group file changed. CPU time (this process) is the steadier figure on a shared machine."""
    cache = ValidateCache(cache_dir)
    full = _best(_timed(lambda: load_project(root, jobs=jobs)) for _ in range(repeat))
    cold = _timed(lambda: load_project(root, jobs=jobs, cache=cache))
    warm = _best(_timed(lambda: load_project(root, jobs=jobs, cache=cache)) for _ in range(repeat))
    changed = []
    for model in sorted(root.rglob("model/*.yaml"))[:repeat]:
        model.write_text(model.read_text() + "description: changed for the benchmark\n")
        changed.append(_timed(lambda: load_project(root, jobs=jobs, cache=cache)))
    return {"full": full, "cold": cold, "warm": warm, "one_file_changed": _best(changed)}


def _timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _best(timings) -> tuple[float, float]:
    timings = list(timings)
    return min(t[0] for t in timings), min(t[1] for t in timings)


def time_hydra(root: Path, sample: int) -> float:
    from hydra import compose, initialize_config_dir

    folders = sorted(p.parent for p in root.rglob("pipeline.yaml"))[:sample]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for folder in folders:
            with initialize_config_dir(config_dir=str(folder), version_base=None):
                compose(config_name="pipeline")
    return (time.perf_counter() - start) / max(len(folders), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hydra-sample", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (0: automatic, as the CLI)")
    parser.add_argument("--no-cache", action="store_true", help="skip the validate-cache timings")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        build_repository(root, args.pipelines)
        timings = time_front_end(root, args.repeat, args.jobs or None)
        cached = None if args.no_cache else time_cache(root, Path(folder) / ".cache", args.repeat, args.jobs or None)
        hydra = time_hydra(root, args.hydra_sample) if args.hydra_sample else None
    best = min(timings)
    print(json.dumps({
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
        "pipelines": args.pipelines, "jobs": args.jobs, "seconds_best": round(best, 3), "seconds_all": [round(t, 3) for t in timings],
        "ms_per_pipeline": round(best / args.pipelines * 1000, 3),
        "hydra_compose_ms_per_pipeline": round(hydra * 1000, 1) if hydra is not None else None,
        "cache": None if cached is None else {
            **{f"{name}_wall_cpu": [round(t, 3) for t in pair] for name, pair in cached.items()},
            "cpu_full_over_one_file_changed": round(cached["full"][1] / cached["one_file_changed"][1], 1),
            "cpu_full_over_warm": round(cached["full"][1] / cached["warm"][1], 1),
            "cpu_cold_over_full": round(cached["cold"][1] / cached["full"][1], 2),
        },
    }, indent=2))


if __name__ == "__main__":
    main()
