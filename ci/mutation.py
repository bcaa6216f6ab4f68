"""Mutation testing of loopc's core with mutmut, one module at a time against the tests that cover it.

    python ci/mutation.py [--rescore] [MODULE ...]   (default: every module in MODULES; `make mutation`)

mutmut names a mutant after its file path, so the package-dir mapping (loopc.runtime=runtime/,
loopc.compiler=compiler/) is laid out as ``src/loopc/...`` in a staging folder under
build/mutation/<module>/ (the checkout itself is never mutated). Each module's run is restricted
to the test files listed for it below; FUNCTIONS narrows a large file to the functions that are core, and
modules in FORKSERVER (JAX) get their workers from mutmut's fork server instead of a fork of a process that
has initialised JAX (which hangs). Results: build/mutation/<module>/results.txt and a score
table on stdout; docs/quality.md records the latest scores and why every survivor is accepted.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "mutation"
RECHECK_SECONDS = 600  # one child-process re-check of a surviving mutant (a hang must not stall the run)
PACKAGES = {"runtime": "runtime", "compiler": "compiler", "templates": "templates", "specs": "specs"}

MODULES: dict[str, list[str]] = {
    "runtime/gate/decide.py": ["tests/test_gates_decide.py", "tests/test_spec_boundaries_gate.py"],
    "runtime/evaluate/metrics.py": ["tests/test_evaluate_metrics.py", "tests/test_spec_boundaries_evaluate.py"],
    "runtime/evaluate/evaluation.py": ["tests/test_evaluate_metrics.py", "tests/test_evaluate_fairness.py",
                                       "tests/test_spec_boundaries_evaluate.py"],
    "runtime/evaluate/fairness.py": ["tests/test_evaluate_fairness.py", "tests/test_spec_boundaries_evaluate.py"],
    "runtime/monitor/drift.py": ["tests/test_monitor_drift.py", "tests/test_spec_boundaries_drift.py",
                                 "tests/test_mut_drift.py"],
    "runtime/monitor/profile.py": ["tests/test_monitor_drift.py", "tests/test_spec_boundaries_drift.py",
                                   "tests/test_spec_boundaries_profile.py", "tests/test_features_fitting.py",
                                   "tests/test_mut_profile.py", "tests/test_features_step_identity.py",
                                   "tests/test_matrices.py"],
    "runtime/monitor/verdict.py": ["tests/test_monitor_drift.py", "tests/test_spec_boundaries_drift.py",
                                   "tests/test_monitor_performance_unknown.py", "tests/test_spec_boundaries_verdict.py"],
    "runtime/data/split.py": ["tests/test_data_split.py", "tests/test_spec_boundaries_split.py", "tests/test_mut_split.py"],
    "runtime/features/transforms.py": ["tests/test_features_transforms.py", "tests/test_spec_boundaries_features.py"],
    "runtime/execution/runner.py": ["tests/test_spec_boundaries_cache.py", "tests/test_mut_cache.py"],
    "compiler/targets/slurm/backend.py": ["tests/test_spec_boundaries_slurm.py", "tests/test_slurm_render.py"],
    "runtime/registry/sqlite.py": ["tests/test_registry_sqlite.py", "tests/test_registry_concurrency.py"],
    "runtime/registry/chain.py": ["tests/test_registry_chain.py", "tests/test_registry_backends.py",
                                  "tests/test_mut_registry.py"],
    "runtime/registry/sql.py": ["tests/test_registry_backends.py", "tests/test_registry_chain.py",
                                "tests/test_registry_files.py", "tests/test_registry_concurrency.py",
                                "tests/test_mut_registry.py", "tests/test_registry_kills.py"],
    "compiler/plan/pipeline.py": ["tests/test_spec_boundaries_plan.py", "tests/test_plan_steps.py",
                                  "tests/test_plan_fingerprint.py", "tests/test_mut_planner.py",
                                  "tests/test_plan_shared.py", "tests/test_render_once.py", "tests/test_golden_local.py"],
    "compiler/targets/jinja.py": ["tests/test_mut_emit.py", "tests/test_airflow_safety.py", "tests/test_slurm_safety.py"],
    "runtime/train/trainer.py": ["tests/test_spec_boundaries_train.py", "tests/test_mut_train.py",
                                 "tests/test_trainer_bookkeeping.py"],
    "runtime/train/epoch.py": ["tests/test_mut_train.py"],
    "compiler/frontend/selectors.py": ["tests/test_selectors_odd_names.py", "tests/test_selectors.py"],
    "runtime/train/checkpoint.py": ["tests/test_trainer_checkpoint_files.py", "tests/test_train_checkpoint.py",
                                    "tests/test_trainer_bookkeeping.py"],
    "compiler/plan/fingerprint.py": ["tests/test_plan_fingerprint.py", "tests/test_spec_boundaries_cache.py",
                                     "tests/test_mut_cache.py", "tests/test_plan_shared.py"],
    "runtime/features/fitting.py": ["tests/test_features_fitting.py", "tests/test_spec_boundaries_features.py",
                                    "tests/test_mut_fitting.py", "tests/test_features_seeded.py"],
    "runtime/data/split_summary.py": ["tests/test_split_summary.py", "tests/test_features_seeded.py"],
    "runtime/steps/matrices.py": ["tests/test_matrices.py", "tests/test_data_path_budget.py"],
    "runtime/data/sketch.py": ["tests/test_features_fitting.py", "tests/test_mut_fitting.py",
                               "tests/test_spec_boundaries_profile.py"],
    "runtime/data/split_record.py": ["tests/test_split_summary.py", "tests/test_data_split.py",
                                     "tests/test_spec_boundaries_split.py", "tests/test_mut_split.py"],
    "runtime/data/parallel.py": ["tests/test_parallel.py"],
    "runtime/data/casting.py": ["tests/test_data_casting.py"],
    "runtime/steps/trial_matrices.py": ["tests/test_trial_matrices.py"],
    "runtime/steps/split_scores.py": ["tests/test_matrices.py", "tests/test_data_path.py"],
}

# Modules whose core is a few functions of a larger file: only those functions' mutants are run and scored.
FUNCTIONS: dict[str, list[str]] = {
    # the names a selector makes (the rest of the file is the front end's wiring, tested through validate)
    "compiler/frontend/selectors.py": ["feature_name", "selected_feature_names", "suffixed"],
    "runtime/execution/runner.py": ["_sha256", "is_cacheable", "cache_key"],
    # early stopping and the loop's bookkeeping; the rest of the trainer is JAX plumbing tested end to end
    "runtime/train/trainer.py": ["_improved", "_run_epoch", "_final_params", "_best_epoch", "_loop"],
    "runtime/train/epoch.py": ["plan_epoch"],
    # reading text and numbers as the declared types (the time zone and example plumbing is tested end to end)
    "runtime/data/casting.py": ["_parse_text", "_parse_int", "_cast_numeric", "_halving", "_cast_integer"],
}

# Tests that reach a module's functions only in child processes (the registry killed by SIGKILL at a named point, the
# CLI run as a command): their children import the checkout, not mutmut's mutated copy, so mutmut's run cannot catch
# a mutant with them. Each mutant of these functions that survives is re-run against the tests that ``-k`` selects,
# with the mutated copy first on PYTHONPATH; children inherit it and MUTANT_UNDER_TEST, which mutmut's trampoline
# reads. {module: ({function: pytest -k expression}, test files)}
CHILD_PROCESS_TESTS: dict[str, tuple[dict[str, str], list[str]]] = {
    "runtime/registry/sql.py": (
        {"register_version": "register", "promote": "promote", "set_alias": "set_alias",
         "remove_alias": "remove_alias", "rollback": "rollback", "record_event": "event"},
        ["tests/test_registry_kills.py"],
    ),
}

# JAX is not fork-safe: mutmut's default workers fork from a process that has initialised it and hang.
# These modules' workers come from a fork server started before any test imports JAX.
FORKSERVER = {"runtime/train/trainer.py", "runtime/train/epoch.py", "runtime/train/checkpoint.py",
              "runtime/steps/matrices.py", "runtime/steps/trial_matrices.py", "runtime/steps/split_scores.py"}


def stage(module: str) -> Path:
    """A fresh staging folder: src/loopc/<package> copies, the tests, and a pyproject for mutmut."""
    root = BUILD / module.replace("/", "_").removesuffix(".py")
    shutil.rmtree(root, ignore_errors=True)
    (root / "src" / "loopc").mkdir(parents=True)
    (root / "src" / "loopc" / "__init__.py").write_text("", encoding="utf-8")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name, folder in PACKAGES.items():
        shutil.copytree(REPO / folder, root / "src" / "loopc" / name, ignore=ignore)
    shutil.copytree(REPO / "tests", root / "tests", ignore=ignore)
    shutil.copytree(REPO / "specs", root / "specs", ignore=ignore)  # tests read specs/examples from the root
    tests = [t for t in MODULES[module] if (REPO / t).exists()]
    args = ", ".join(f'"{t}"' for t in tests)
    (root / "pyproject.toml").write_text(
        (REPO / "pyproject.toml").read_text(encoding="utf-8").split("[tool.pytest.ini_options]")[0]
        + '[tool.pytest.ini_options]\naddopts = "-p no:cacheprovider -p no:xdist"\n'
        'markers = ["airflow: engine", "slurm: engine", "slow: end-to-end"]\n\n'
        '[tool.mutmut]\nsource_paths = ["src"]\nalso_copy = ["specs"]\n'
        f'only_mutate = ["src/loopc/{module}"]\n'
        f"pytest_add_cli_args_test_selection = [{args}]\n"
        'pytest_add_cli_args = ["-q", "-x", "-m", "not airflow and not slurm and not slow"]\n'
        "use_git_change_detection = false\n"
        + ('process_isolation = "forkserver"\n' if module in FORKSERVER else ""),
        encoding="utf-8",
    )
    return root


KILLED = ("killed", "timeout", "segfault")  # a mutant that makes the tests fail, hang or crash is caught


def mutant_patterns(module: str) -> list[str]:
    """mutmut name patterns of the mutants to run: every mutant of the module unless FUNCTIONS narrows it."""
    dotted = "loopc." + module.removesuffix(".py").replace("/", ".")
    return [f"{dotted}.x_{function}__mutmut_*" for function in FUNCTIONS.get(module, [])]


def run(module: str, rescore: bool = False) -> tuple[int, int, list[str]]:
    """(killed, total, names of the mutants not killed) of one module's mutation run (``rescore``: of the last one)."""
    root = BUILD / module.replace("/", "_").removesuffix(".py") if rescore else stage(module)
    mutmut = [sys.executable, "-m", "mutmut"]
    env = {**os.environ, "PYTHONPATH": "", "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false"}
    if module in FORKSERVER:  # mutants of Python bookkeeping compile the same XLA programs: compile each once
        env |= {"JAX_COMPILATION_CACHE_DIR": str(root / "jax-cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    patterns = mutant_patterns(module)
    if not rescore:
        with open(root / "run.log", "w", encoding="utf-8") as log:
            jobs = os.environ.get("MUTATION_JOBS", "2")
            subprocess.run([*mutmut, "run", "--max-children", jobs, *patterns], cwd=root, env=env, stdout=log,
                           stderr=subprocess.STDOUT)  # fmt: skip
    results = subprocess.run([*mutmut, "results", "--all", "true"], cwd=root, env=env, capture_output=True, text=True)
    (root / "results.txt").write_text(results.stdout, encoding="utf-8")
    states = re.findall(r"^\s*(\S+__mutmut_\d+): (.+)$", results.stdout, re.MULTILINE)
    states = [(n, s) for n, s in states if not patterns or any(fnmatch.fnmatch(n, p) for p in patterns)]
    if not states or any(state.strip() == "not checked" for _, state in states):
        return 0, 0, [f"the mutation run did not complete (the tests fail unmutated?); see {root / 'run.log'}"]
    survivors = [(name, state.strip()) for name, state in states if state.strip() not in KILLED]
    survivors = recheck_in_child_processes(module, root, env, survivors)
    return len(states) - len(survivors), len(states), [f"{name} ({state})" for name, state in survivors]


def recheck_in_child_processes(module: str, root: Path, env: dict, survivors: list[tuple[str, str]]) -> list:
    """``survivors`` less those that CHILD_PROCESS_TESTS catch; each re-check is logged in children.txt."""
    selections, tests = CHILD_PROCESS_TESTS.get(module, ({}, []))
    pattern = re.compile(rf"(ǁ|\.x_)({'|'.join(map(re.escape, selections))})__mutmut_\d+$")
    chosen = [(name, selections[match[2]]) for name, _ in survivors if selections and (match := pattern.search(name))]
    if not chosen:
        return survivors
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-m", "not airflow and not slurm and not slow", *tests]
    env = {**env, "PYTHONPATH": str(root / "mutants" / "src")}

    def fails(mutant: str, selection: str) -> bool:
        try:
            done = subprocess.run([*pytest, "-k", selection], cwd=root / "mutants", capture_output=True, text=True,
                                  env={**env, "MUTANT_UNDER_TEST": mutant}, timeout=RECHECK_SECONDS)  # fmt: skip
        except subprocess.TimeoutExpired:
            return True  # a mutant that hangs the tests is caught, as mutmut counts a timeout
        return done.returncode != 0

    caught = set()
    with open(root / "children.txt", "w", encoding="utf-8") as log:
        if fails("", " or ".join(sorted(set(selections.values())))):
            log.write(f"{' '.join(tests)} fail without a mutant: no re-check\n")
            return survivors
        for name, selection in chosen:
            if fails(name, selection):
                caught.add(name)
            log.write(f"{name}: {'killed in a child process' if name in caught else 'survived'}\n")
    return [(name, state) for name, state in survivors if name not in caught]


def main(argv: list[str]) -> int:
    rescore = "--rescore" in argv  # score the last run's results again (after changing CHILD_PROCESS_TESTS)
    argv = [a for a in argv if a != "--rescore"]
    modules = argv or list(MODULES)
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        print(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(MODULES)}", file=sys.stderr)
        return 2
    table = []
    for module in modules:
        killed, total, survivors = run(module, rescore)
        table.append((module, killed, total, survivors))
    print("\nmodule | killed/total | score")
    for module, killed, total, survivors in table:
        score = f"{100.0 * killed / total:.1f}%" if total else "no result"
        print(f"{module} | {killed}/{total} | {score}")
        for name in survivors:
            print(f"    not killed: {name}")
    return 0 if all(total for _, _, total, _ in table) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
