"""Front-end benchmark: validate a repository of N pipelines (ROADMAP goal: 1,000 in <= 5 s).

Copies the churn and demand examples N/2 times each into a temporary repository (every copy with its
own config groups and a unique pipeline name), then times ``load_project`` on the whole tree:
discovery, parsing with positions, composition, pydantic validation and cross-reference checks.
For context it also times Hydra's compose API on a sample of the same files. With the validate cache
(``loopc validate --cache``) it times a cold run that fills the cache, a warm run with nothing changed,
and a re-validate after one config-group file changed (a different pipeline's file each repeat; always the
model option the pipeline's defaults list selects, a file the pipeline reads, so that pipeline is composed
and validated again). It also times whole `loopc` processes (CPU of the process and its children): validate,
validate --cache with nothing changed and after one file changed, and plan --base HEAD after ten pipelines
changed; ratios are computed within the run.
Run: ``python benchmarks/validate.py [--pipelines N] [--repeat R] [--hydra-sample S] [--jobs J] [--no-cache]
[--no-commands] [--no-pycache]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from loopc.compiler.api import load_project, validate_project
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


def read_model_files(root: Path) -> list[Path]:
    """Per pipeline under ``root``, sorted, the model option its defaults list selects (``- model: NAME``): a
    config-group file the pipeline reads. The other options are in no pipeline's inputs: a change to one of
    them composes nothing."""
    files = []
    for pipeline in sorted(root.rglob("pipeline.yaml")):
        chosen = re.search(r"^\s*-\s*model:\s*(\w+)\s*$", pipeline.read_text(), re.MULTILINE)
        if chosen:
            files.append(pipeline.parent / "model" / f"{chosen.group(1)}.yaml")
    return files


def time_cache(root: Path, cache_dir: Path, repeat: int, jobs: int | None) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds, best of ``repeat``, of what ``loopc validate --cache`` runs (``validate_project``):
    cold (fills the cache), warm (nothing changed), one config-group file a pipeline reads changed (a
    different pipeline's each repeat); and ``load_project`` with a warm cache (what plan and compile get from ``--cache``)."""
    cache = ValidateCache(cache_dir)
    cold = _timed(lambda: validate_project(root, jobs=jobs, cache=cache))
    warm = _best(_timed(lambda: validate_project(root, jobs=jobs, cache=cache)) for _ in range(repeat))
    warm_load = _best(_timed(lambda: load_project(root, jobs=jobs, cache=cache)) for _ in range(repeat))
    changed = []
    for model in read_model_files(root)[:repeat]:
        model.write_text(model.read_text() + "description: changed for the benchmark\n")
        changed.append(_timed(lambda: validate_project(root, jobs=jobs, cache=cache)))
    return {"cold": cold, "warm": warm, "one_file_changed": _best(changed), "warm_load_project": warm_load}


def time_commands(root: Path, cache_dir: Path, repeat: int, pycache: Path | None) -> dict[str, float]:
    """CPU seconds (user + system of the ``loopc`` process and its children, such as git), best of ``repeat``,
    of whole command-line runs: interpreter start, imports, the work. ``root`` becomes a git repository.
    ``pycache``: where the commands keep compiled bytecode (PYTHONPYCACHEPREFIX, PYTHONDONTWRITEBYTECODE
    dropped), as an installed package has it; None: as the environment says (with PYTHONDONTWRITEBYTECODE=1 and
    an editable install every command compiles loopc's sources again)."""
    env = {**os.environ, "LOOPC_CACHE_DIR": str(cache_dir)}
    if pycache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache)

    def cli(*argv: str, ok: tuple[int, ...] = (0,)) -> float:
        return _child_cpu([sys.executable, "-m", "loopc.compiler.cli.main", *argv], env, ok)

    cli("validate", str(root), "--cache")  # fills the cache (and compiles every module validate imports)
    full = min(cli("validate", str(root)) for _ in range(repeat))
    warm = min(cli("validate", str(root), "--cache") for _ in range(repeat))
    changed = []
    for model in read_model_files(root)[-repeat:]:
        model.write_text(model.read_text() + "description: changed for the benchmark\n")
        changed.append(cli("validate", str(root), "--cache"))
    git = ["git", "-C", str(root), "-c", "user.name=b", "-c", "user.email=b@b"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    for model in sorted(root.rglob("model/*.yaml"))[:10]:  # ten pipelines change
        model.write_text(model.read_text().replace("epochs:", "epochs: 7 #", 1))
    plan = min(cli("plan", str(root), "--base", "HEAD", "-f", "json", ok=(4,)) for _ in range(repeat))
    plan_cached = min(cli("plan", str(root), "--base", "HEAD", "-f", "json", "--cache", ok=(4,)) for _ in range(repeat))
    return {"validate": full, "validate_cache_nothing_changed": warm, "validate_cache_one_file_changed": min(changed),
            "plan_ten_changed": plan, "plan_ten_changed_cache": plan_cached}


def _child_cpu(command: list[str], env: dict[str, str], ok: tuple[int, ...]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}: {done.stderr}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _timed(function) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _best(timings) -> tuple[float, float]:
    timings = list(timings)
    return min(t[0] for t in timings), min(t[1] for t in timings)


def time_yaml_parse(root: Path, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds, best of ``repeat``: every YAML file under ``root`` read and parsed with PyYAML's
    C loader (no positions, no composition, no validation): the floor a validator cannot beat."""
    import yaml

    files = sorted(root.rglob("*.yaml"))

    def parse() -> None:
        for file in files:
            yaml.load(file.read_bytes(), Loader=yaml.CSafeLoader)

    return _best(_timed(parse) for _ in range(repeat))


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
    parser.add_argument("--hydra-sample", type=int, default=0, help="also time Hydra's compose API on S pipelines")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (0: automatic, as the CLI)")
    parser.add_argument("--no-cache", action="store_true", help="skip the validate-cache timings")
    parser.add_argument("--no-commands", action="store_true", help="skip the whole-command timings (validate, plan)")
    parser.add_argument("--no-pycache", action="store_true",
                        help="commands compile bytecode as the environment says (default: kept in a temporary folder)")
    args = parser.parse_args()
    jobs = args.jobs or None
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "repo"
        build_repository(root, args.pipelines)
        parse = time_yaml_parse(root, args.repeat)
        full = _best(_timed(lambda: load_project(root, jobs=jobs)) for _ in range(args.repeat))
        cached = None if args.no_cache else time_cache(root, Path(folder) / "cache", args.repeat, jobs)
        hydra = time_hydra(root, args.hydra_sample) if args.hydra_sample else None
        pycache = None if args.no_pycache else Path(folder) / "pycache"
        commands = None if args.no_commands else time_commands(root, Path(folder) / "cli-cache", args.repeat, pycache)
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "python": platform.python_version(),
        "clock": "CPU seconds, best of repeat", "pipelines": args.pipelines, "jobs": args.jobs,
        "commands_bytecode": "as the environment says" if args.no_pycache else "kept (PYTHONPYCACHEPREFIX)",
        "yaml_c_parse_wall_cpu": _round(parse), "validate_wall_cpu": _round(full),
        "cpu_validate_over_yaml_c_parse": round(full[1] / parse[1], 2),
        "hydra_compose_ms_per_pipeline": round(hydra * 1000, 1) if hydra is not None else None,
    }
    if cached:
        result["cache"] = {**{f"{name}_wall_cpu": _round(pair) for name, pair in cached.items()},
                           "cpu_one_file_changed_over_full": round(cached["one_file_changed"][1] / full[1], 3),
                           "cpu_warm_over_full": round(cached["warm"][1] / full[1], 3),
                           "cpu_cold_over_full": round(cached["cold"][1] / full[1], 2)}
    if commands:
        validate = commands["validate"]
        result["commands_cpu"] = {**{name: round(value, 3) for name, value in commands.items()},
                                  "validate_cache_one_file_changed_over_validate":
                                      round(commands["validate_cache_one_file_changed"] / validate, 3),
                                  "validate_cache_nothing_changed_over_validate":
                                      round(commands["validate_cache_nothing_changed"] / validate, 3),
                                  "plan_ten_changed_over_validate": round(commands["plan_ten_changed"] / validate, 2),
                                  "plan_ten_changed_cache_over_validate":
                                      round(commands["plan_ten_changed_cache"] / validate, 2)}
    print(json.dumps(result, indent=2))


def _round(pair: tuple[float, float]) -> list[float]:
    return [round(t, 3) for t in pair]


if __name__ == "__main__":
    main()
