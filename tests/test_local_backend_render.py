"""The local target: layout, step documents the runtime reads, stable bytes, run.sh that bash runs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from test_plan_support import EXAMPLE_NAMES, example_plans

from loopc.compiler.plan.pipeline import step_document
from loopc.compiler.targets import EmitOptions, backends
from loopc.compiler.targets.common import plan_manifest
from loopc.runtime.execution.step import step_from_dict

PLAN_STEP_KEYS = {"id", "kind", "stage", "deps", "file", "cacheable", "resources", "array", "array_index"}
TARGETS = sorted(backends())


def render_local(example: str, options: EmitOptions = EmitOptions(), **choices: str) -> dict[str, str]:
    return backends()["local"].render(example_plans(example, **choices), options)


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_layout_is_plan_json_run_sh_and_one_document_per_step(example):
    plans = example_plans(example)
    files = render_local(example)
    expected = set()
    for plan in plans:
        expected |= {f"{plan.name}/plan.json", f"{plan.name}/run.sh"}
        expected |= {f"{plan.name}/steps/{step.id}.json" for step in plan.steps}
    assert set(files) == expected


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_plan_json_lists_steps_in_order_with_their_files(example):
    files = render_local(example)
    for plan in example_plans(example):
        manifest = json.loads(files[f"{plan.name}/plan.json"])
        assert manifest == plan_manifest(plan)
        assert (manifest["plan"], manifest["kind"], manifest["triggers"]) == (plan.name, plan.kind, plan.triggers)
        seen: set[str] = set()
        for entry in manifest["steps"]:
            assert PLAN_STEP_KEYS <= set(entry)
            assert set(entry["deps"]) <= seen, f"{entry['id']} listed before its deps"
            seen.add(entry["id"])
            document = json.loads(files[f"{plan.name}/{entry['file']}"])
            assert document["fingerprint"] == entry["fingerprint"]


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_step_documents_are_what_the_runtime_loads(example):
    files = render_local(example, model="mlp") if example == "churn" else render_local(example)
    plans = example_plans(example, model="mlp") if example == "churn" else example_plans(example)
    for plan in plans:
        for step in plan.steps:
            data = json.loads(files[f"{plan.name}/steps/{step.id}.json"])
            assert data == step_document(plan, step)
            loaded = step_from_dict(data, step.id)
            assert (loaded.id, loaded.kind, loaded.deps, loaded.plan) == (step.id, step.kind, step.deps, plan.name)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_backend_emits_stable_lf_text_without_absolute_paths(target, example):
    backend = backends()[target]
    first = backend.render(example_plans(example), EmitOptions())
    second = backend.render(example_plans(example), EmitOptions())
    assert first and first == second
    for path, text in first.items():
        assert not path.startswith("/") and ".." not in Path(path).parts
        assert "\r" not in text and text.endswith("\n"), path
        assert str(Path.cwd()) not in text and str(Path.home()) not in text, path


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_every_emitted_shell_script_passes_bash_n(target, example, tmp_path):
    files = backends()[target].render(example_plans(example), EmitOptions())
    scripts = [path for path in files if path.endswith(".sh")]
    assert scripts or target == "airflow"
    for path in scripts:
        script = tmp_path / path.replace("/", "__")
        script.write_text(files[path])
        result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{path}: {result.stderr}"


def _materialize(files: dict[str, str], folder: Path) -> None:
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if path.suffix == ".sh":
            path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_run_sh_passes_python_and_root_as_single_words(tmp_path):
    recorder = tmp_path / "bin dir" / "record args"
    recorder.parent.mkdir()
    recorder.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    recorder.chmod(0o755)
    root = "it's \"odd\" $HOME `x` dir"
    files = render_local("demand", EmitOptions(python=str(recorder), root=root))
    out = tmp_path / "out dir"
    _materialize(files, out)
    result = subprocess.run(["bash", str(out / "demand" / "run.sh"), "--jobs", "1"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == [
        "-m", "loopc.runtime", "run-plan", str(out / "demand" / "plan.json"), "--root", root, "--jobs", "1"]


def test_run_sh_starts_the_real_local_executor(tmp_path):
    files = render_local("churn", EmitOptions(python=sys.executable))
    _materialize(files, tmp_path)
    env = {**os.environ, "PATH": os.environ.get("PATH", "")}
    result = subprocess.run([str(tmp_path / "churn" / "run.sh"), "--help"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "run-plan" in result.stdout and "--run-id" in result.stdout


def test_check_accepts_every_example():
    for example in EXAMPLE_NAMES:
        assert backends()["local"].check(example_plans(example), EmitOptions()) == []


@pytest.mark.parametrize("pipeline", ["p\nrm -rf ~", "p # x", "a\rb", "-x"])
def test_names_a_generated_file_cannot_carry_are_refused_by_every_target(pipeline):
    """Specs give identifiers; a plan built by hand with a line break in its name must not reach a comment line."""
    from loopc.compiler.errors import LoopcError
    from loopc.compiler.plan.pipeline import Plan, Step
    from loopc.compiler.targets import EmitOptions, backends

    step = Step(id="validate.d", kind="validate", stage="data", config={}, deps=(), fingerprint="f" * 64)
    plan = Plan(pipeline=pipeline, kind="train", steps=(step,), spec_hash="h" * 64)
    for backend in backends().values():
        assert backend.check([plan], EmitOptions()), backend.name
        with pytest.raises(LoopcError):
            backend.render([plan], EmitOptions())
