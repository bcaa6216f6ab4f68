"""The planted-bug experiment: plant one small deliberate bug at a time in a copy of the core, run the
tests that cover it, and report whether they catch it.

    python ci/planted_bugs.py [NAME ...]      (default: every bug in BUGS)

Each bug is an exact text replacement that must match once in a clean file. The copy is laid out as
``src/loopc/...`` under build/planted/ (the checkout is never changed) and imported through PYTHONPATH.
docs/quality.md records the latest outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "build" / "planted"


@dataclass(frozen=True)
class Bug:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


GATE = ("tests/test_gates_decide.py", "tests/test_spec_boundaries_gate.py")
DRIFT = ("tests/test_monitor_drift.py", "tests/test_spec_boundaries_drift.py")
SPLIT = ("tests/test_data_split.py", "tests/test_spec_boundaries_split.py")
EVAL = ("tests/test_evaluate_metrics.py", "tests/test_evaluate_fairness.py", "tests/test_spec_boundaries_evaluate.py")
TRAIN = ("tests/test_train_core.py", "tests/test_spec_boundaries_train.py")

BUGS = [
    Bug("gate max bound strict", "runtime/gate/decide.py", "ok = number <= high", "ok = number < high", GATE),
    Bug("gate relative gain over signed champion", "runtime/gate/decide.py", "return gain / abs(champion)",
        "return gain / champion", GATE),
    Bug("slice min_rows inclusive", "runtime/gate/decide.py", "if rows < min_rows:", "if rows <= min_rows:", GATE),
    Bug("psi_max inclusive", "runtime/monitor/verdict.py", 'stats["psi"] > config["psi_max"]',
        'stats["psi"] >= config["psi_max"]', DRIFT),
    Bug("min_drifted strict", "runtime/monitor/verdict.py", 'len(drifted) >= config["min_drifted"]',
        'len(drifted) > config["min_drifted"]', DRIFT),
    Bug("cooldown strict", "runtime/monitor/verdict.py", "- float(last) >= cooldown_seconds",
        "- float(last) > cooldown_seconds", DRIFT),
    Bug("null rate inclusive", "runtime/monitor/verdict.py", 'if stats["null_rate"] > max_null_rate',
        'if stats["null_rate"] >= max_null_rate', DRIFT),
    Bug("PSI floor on one side only", "runtime/monitor/drift.py",
        "ref, cur = np.maximum(reference, EPS), np.maximum(current, EPS)",
        "ref, cur = np.maximum(reference, EPS), current + 0.0", DRIFT),
    Bug("PSI deciles off by one", "runtime/monitor/profile.py", "np.linspace(0.0, 1.0, psi_bins + 1)[1:-1]",
        "np.linspace(0.0, 1.0, psi_bins)[1:-1]", DRIFT),
    Bug("hash/random split edge uses test for valid", "runtime/data/split.py",
        'edges = np.array([split["train"], split["train"] + split["valid"]])',
        'edges = np.array([split["train"], split["train"] + split["test"]])', SPLIT),
    Bug("time split cut uses test for valid", "runtime/data/split.py",
        'int(round(count * (split["train"] + split["valid"])))', 'int(round(count * (split["train"] + split["test"])))',
        SPLIT),
    Bug("features fitted on the valid split", "runtime/steps/features.py",
        'split_batches(ctx.state, split_artifact, "train",', 'split_batches(ctx.state, split_artifact, "valid",',
        ("tests/test_spec_boundaries_split.py",)),
    Bug("standardize arguments swapped", "runtime/features/transforms.py",
        '"standardize": lambda s, v: (v - s["mean"]) / s["std"]', '"standardize": lambda s, v: (v - s["std"]) / s["mean"]',
        ("tests/test_features_transforms.py", "tests/test_spec_boundaries_features.py")),
    Bug("fairness threshold strict", "runtime/evaluate/fairness.py", "predicted = p >= threshold",
        "predicted = p > threshold", EVAL),
    Bug("calibration bins off by one", "runtime/evaluate/evaluation.py", "np.minimum((p * bins).astype(np.int64), bins - 1)",
        "np.minimum((p * bins).astype(np.int64), bins - 2)", EVAL),
    Bug("early stopping counts an improvement of exactly min_delta", "runtime/train/trainer.py",
        "return val_loss < progress.best_val - min_delta", "return val_loss <= progress.best_val - min_delta", TRAIN),
    Bug("early stopping min_delta sign", "runtime/train/trainer.py",
        "return val_loss < progress.best_val - min_delta", "return val_loss < progress.best_val + min_delta", TRAIN),
    Bug("patience off by one", "runtime/train/trainer.py", 'progress.bad_epochs >= int(early.get("patience", 3))',
        'progress.bad_epochs > int(early.get("patience", 3))', TRAIN),
    Bug("cache key skips the first upstream", "runtime/execution/runner.py", "for dep in doc.deps]",
        "for dep in doc.deps[1:]]", ("tests/test_spec_boundaries_cache.py",)),
    Bug("Slurm cycle check silent", "compiler/targets/slurm/backend.py",
        'raise SlurmTargetError(f"plan has a dependency cycle among jobs {sorted(waiting)}")', "break",
        ("tests/test_spec_boundaries_slurm.py",)),
    Bug("monitor reports unjudged performance as passed", "runtime/monitor/verdict.py",
        '"status": "unknown", "passed": None,', '"status": "passed", "passed": True,',
        ("tests/test_monitor_performance_unknown.py",)),
]


def stage() -> Path:
    """A clean copy: src/loopc/{compiler,runtime,templates,specs}, tests and specs at the root."""
    shutil.rmtree(BUILD, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    (BUILD / "src" / "loopc").mkdir(parents=True)
    (BUILD / "src" / "loopc" / "__init__.py").write_text("", encoding="utf-8")
    for name in ("compiler", "runtime", "templates", "specs"):
        shutil.copytree(REPO / name, BUILD / "src" / "loopc" / name, ignore=ignore)
    for name in ("tests", "specs"):
        shutil.copytree(REPO / name, BUILD / name, ignore=ignore)
    shutil.copy2(REPO / "pyproject.toml", BUILD / "pyproject.toml")
    return BUILD


def run_tests(root: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m",
               "not airflow and not slurm and not slow", *tests]  # fmt: skip
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)


def plant(root: Path, bug: Bug) -> bool:
    """True when the tests catch ``bug`` (they fail with it and passed without it)."""
    target = root / "src" / "loopc" / bug.path
    clean = target.read_text(encoding="utf-8")
    if clean.count(bug.old) != 1:
        raise SystemExit(f"{bug.name}: the text to replace occurs {clean.count(bug.old)} times in {bug.path}")
    try:
        target.write_text(clean.replace(bug.old, bug.new), encoding="utf-8")
        return run_tests(root, bug.tests).returncode != 0
    finally:
        target.write_text(clean, encoding="utf-8")


def main(argv: list[str]) -> int:
    bugs = [b for b in BUGS if not argv or b.name in argv]
    root = stage()
    baseline = run_tests(root, tuple(sorted({t for b in bugs for t in b.tests})))
    if baseline.returncode != 0:
        print(baseline.stdout[-3000:], baseline.stderr[-3000:])
        raise SystemExit("the tests fail without any planted bug; fix that first")
    missed = []
    for bug in bugs:
        caught = plant(root, bug)
        print(f"{'caught' if caught else 'MISSED'} | {bug.name} | {bug.path} | {', '.join(bug.tests)}", flush=True)
        missed += [] if caught else [bug.name]
    print(f"{len(bugs) - len(missed)} of {len(bugs)} planted bugs caught")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
