"""The CI assets work: the REAL pre-commit runs the hooks of .pre-commit-hooks.yaml in a scratch
repository, and every loopc command line in docs/ci/ is one the CLI accepts.

The hooks run are the `-system` variants (the loopc of this venv): the `language: python` ones would
pip-install loopc and JAX into a fresh environment, too heavy for a test; a test below keeps the
two variants identical apart from the language.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loopc.compiler.cli.main import build_parser

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / ".pre-commit-hooks.yaml"
BASE = REPO / "tests" / "diff_cases" / "base"
CI_FILES = {"github": REPO / "docs" / "ci" / "github-actions.yml", "gitlab": REPO / "docs" / "ci" / "gitlab-ci.yml"}
HOOKS = {hook["id"]: hook for hook in yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))}


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False)


def git(cwd: Path, *args: str) -> str:
    done = run(cwd, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def pre_commit() -> list[str]:
    return [sys.executable, "-m", "pre_commit"]


def test_the_manifest_is_valid_for_pre_commit():
    done = run(REPO, *pre_commit(), "validate-manifest", str(MANIFEST))
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_system_hook_mirrors_its_isolated_hook():
    for hook_id, hook in HOOKS.items():
        if hook_id.endswith("-system"):
            isolated = HOOKS[hook_id.removesuffix("-system")]
            assert isolated["language"] == "python" and hook["language"] == "system"
            keys = ("entry", "args", "files", "pass_filenames", "stages")
            assert {k: hook.get(k) for k in keys} == {k: isolated.get(k) for k in keys}, hook_id
    assert HOOKS["loopc-plan"]["stages"] == ["manual"] and "stages" not in HOOKS["loopc-validate"]


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A scratch repository of specs whose .pre-commit-config.yaml uses this checkout's hooks."""
    hooks = tmp_path / "hooks"  # a repository holding this checkout's manifest, as pre-commit clones it
    hooks.mkdir()
    shutil.copyfile(MANIFEST, hooks / ".pre-commit-hooks.yaml")
    git(hooks, "init", "-q")
    git(hooks, "add", ".pre-commit-hooks.yaml")
    git(hooks, "commit", "-q", "-m", "hooks")
    root = tmp_path / "project"
    shutil.copytree(BASE, root / "specs")
    config = {"repos": [{"repo": str(hooks), "rev": git(hooks, "rev-parse", "HEAD"),
                         "hooks": [{"id": "loopc-validate-system", "args": ["specs"]},
                                   {"id": "loopc-plan-system", "args": ["specs", "--base", "HEAD"]}]}]}
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "specs")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return root, env


def test_the_validate_hook_passes_valid_specs_and_fails_with_located_errors(project):
    root, env = project
    done = run(root, *pre_commit(), "run", "--all-files", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"loopc validate\.+Passed", done.stdout), done.stdout
    pipeline = root / "specs" / "pipeline.yaml"
    pipeline.write_text(pipeline.read_text().replace("no_champion: promote", "no_champion: always"))
    git(root, "add", "specs/pipeline.yaml")
    done = run(root, *pre_commit(), "run", "--all-files", env=env)
    assert done.returncode == 1
    assert re.search(r"loopc validate\.+Failed", done.stdout), done.stdout
    assert re.search(r"specs/pipeline\.yaml:\d+:\d+: LPC\d+ gate\.no_champion", done.stdout), done.stdout


def test_the_plan_hook_runs_on_the_manual_stage_only_and_classifies_the_staged_change(project):
    root, env = project
    model = root / "specs" / "model" / "logistic.yaml"
    model.write_text(model.read_text().replace("lr: 0.05", "lr: 0.02"))
    git(root, "add", "specs/model/logistic.yaml")
    commit_stage = run(root, *pre_commit(), "run", "--all-files", env=env)
    assert commit_stage.returncode == 0 and "loopc plan" not in commit_stage.stdout, commit_stage.stdout
    manual = run(root, *pre_commit(), "run", "loopc-plan-system", "--hook-stage", "manual", "--all-files", env=env)
    assert manual.returncode == 1, manual.stdout + manual.stderr  # plan exits 4: a change to review
    assert re.search(r"retrain +optimizer +model\.optimizer\.lr: 0\.05 -> 0\.02", manual.stdout), manual.stdout
    assert "exit code: 4" in manual.stdout
    git(root, "commit", "-q", "-m", "lr")
    again = run(root, *pre_commit(), "run", "loopc-plan-system", "--hook-stage", "manual", "--all-files", env=env)
    assert again.returncode == 0 and "1 unchanged" in again.stdout, again.stdout


# --------------------------------------------------------------------------- workflow files


def scripts(node) -> list[str]:
    """Every shell script in a CI file: GitHub `run:` values, GitLab `script:`/`before_script:` items."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "run" and isinstance(value, str):
                found.append(value)
            elif key in ("script", "before_script") and isinstance(value, list):
                found.extend(str(item) for item in value)
            else:
                found.extend(scripts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(scripts(item))
    return found


def loopc_commands(script: str) -> list[list[str]]:
    """The argument lists of each `loopc ...` command, shell variables replaced by a placeholder."""
    commands = []
    for line in script.splitlines():
        line = re.sub(r'"?\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"?', "VALUE", line.strip())
        if line.startswith("loopc "):
            words = shlex.split(line, comments=True)
            cut = next((i for i, w in enumerate(words) if w in (">", "|", "||", "&&", ";")), len(words))
            commands.append(words[1:cut])
    return commands


@pytest.mark.parametrize("name", sorted(CI_FILES))
def test_every_loopc_command_in_the_ci_examples_parses(name):
    document = yaml.safe_load(CI_FILES[name].read_text(encoding="utf-8"))
    commands = [c for script in scripts(document) for c in loopc_commands(script)]
    assert [c[0] for c in commands] == ["validate", "plan"]
    for argv in commands:
        build_parser().parse_args(argv)  # a UsageError fails the test
    plan = commands[1]
    assert plan[plan.index("--format") + 1] == "markdown" and "--base" in plan
    if name == "github":
        assert commands[0][-2:] == ["--format", "github"]


def test_the_github_workflow_passes_event_values_through_the_environment():
    """`${{ }}` inside a run script is a script-injection hole; values go through env instead."""
    document = yaml.safe_load(CI_FILES["github"].read_text(encoding="utf-8"))
    assert all("${{" not in script for script in scripts(document))
    steps = document["jobs"]["specs"]["steps"]
    assert steps[0]["with"]["fetch-depth"] == 0
    assert document["permissions"] == {"contents": "read", "pull-requests": "write"}
