"""``loopc plan`` through the real CLI in a scratch git repository: a base commit, a changed work tree."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from golden_support import assert_matches_golden

from loopc.compiler.diff.compare import Change
from loopc.compiler.diff.pipelines import PipelineDiff, SpecChange
from loopc.compiler.diff.report import PlanReport, to_markdown

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "tests" / "diff_cases" / "base"
DEMAND = REPO / "specs" / "examples" / "demand"


def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    return subprocess.run(["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True).stdout


def loopc(cwd: Path, *args: str, tmp: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"TMPDIR": str(tmp)} if tmp else {})}
    return subprocess.run([sys.executable, "-m", "loopc.compiler.cli.main", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A base commit with two pipelines (churn, demand) under specs/."""
    root = tmp_path / "project"
    shutil.copytree(BASE, root / "specs" / "churn")
    shutil.copytree(DEMAND, root / "specs" / "demand", ignore=shutil.ignore_patterns("*.py"))
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root


def change_work_tree(root: Path) -> None:
    """churn: retrain + re-gate + operational + metadata edits; demand removed; churn_eu added."""
    churn = root / "specs" / "churn"
    shutil.copytree(churn, root / "specs" / "churn_eu")
    edit(root / "specs" / "churn_eu" / "pipeline.yaml", "name: churn\n", "name: churn_eu\n")
    edit(churn / "model" / "logistic.yaml", "lr: 0.05", "lr: 0.02")
    edit(churn / "pipeline.yaml", "owner: growth-ml@example.com", "owner: retention-ml@example.com")
    edit(churn / "pipeline.yaml", "{metric: auc, min: 0.70}", "{metric: auc, min: 0.72}")
    edit(churn / "pipeline.yaml", "cooldown: 1h", "cooldown: 6h")
    edit(churn / "pipeline.yaml", "p_value: 0.001", "p_value: 1e-3  # written differently: no change")
    shutil.rmtree(root / "specs" / "demand")


def test_plan_of_a_pull_request_matches_the_golden_text_and_markdown(repo, tmp_path):
    change_work_tree(repo)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    status, worktrees = git(repo, "status", "--porcelain"), git(repo, "worktree", "list")
    text = loopc(repo, "plan", "specs", "--base", "main", tmp=scratch)
    markdown = loopc(repo, "plan", "specs", "--base", "main", "--format", "markdown", tmp=scratch)
    assert (text.returncode, markdown.returncode) == (4, 4), text.stderr + markdown.stderr
    assert_matches_golden("plan", "pull_request", {"plan.txt": text.stdout, "plan.md": markdown.stdout})
    assert (git(repo, "status", "--porcelain"), git(repo, "worktree", "list")) == (status, worktrees)
    assert list(scratch.iterdir()) == []  # the extracted base is gone


def test_json_lists_statuses_classes_and_the_steps_that_would_run(repo):
    change_work_tree(repo)
    done = loopc(repo, "plan", "specs", "--base", "main", "--format", "json")
    assert done.returncode == 4, done.stderr
    report = json.loads(done.stdout)
    by_name = {p["name"]: p for p in report["pipelines"]}
    assert {n: (p["status"], p["class"]) for n, p in by_name.items()} == {
        "churn": ("changed", "retrain"), "churn_eu": ("added", None), "demand": ("removed", None)}
    assert by_name["demand"]["file"] == "main:specs/demand/pipeline.yaml"
    changes = {c["path"]: (c["class"], c["old"], c["new"]) for c in by_name["churn"]["changes"]}
    assert changes == {"model.optimizer.lr": ("retrain", 0.05, 0.02),
                       "gate.thresholds[0].min": ("re-gate", 0.7, 0.72),
                       "monitors.weekly_drift.action.cooldown": ("operational", "1h", "6h"),
                       "pipeline.owner": ("metadata", "growth-ml@example.com", "retention-ml@example.com")}
    steps = {s["step"]: s["why"] for s in by_name["churn"]["steps"]}
    assert steps["train.churn_classifier"] == "config changed: model.optimizer.lr"
    assert "validate.customers" not in steps and "features.churn_classifier" not in steps
    assert {s["change"] for s in by_name["churn_eu"]["steps"]} == {"added"}
    assert {s["change"] for s in by_name["demand"]["steps"]} == {"removed"}
    assert report["summary"] == {"changed": 1, "added": 1, "removed": 1, "unchanged": 0}


def test_nothing_changed_exits_zero_and_says_so(repo):
    edit(repo / "specs" / "churn" / "pipeline.yaml", "p_value: 0.001", "p_value: 1e-3")  # same value
    done = loopc(repo, "plan", "specs", "--base", "HEAD")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.endswith("2 pipelines: 0 changed, 0 added, 0 removed, 2 unchanged\n")


def test_a_single_pipeline_file_brings_its_config_groups(repo):
    edit(repo / "specs" / "churn" / "model" / "logistic.yaml", "epochs: 30", "epochs: 31")
    done = loopc(repo / "specs", "plan", "churn/pipeline.yaml", "--base", "HEAD", "--format", "json")
    assert done.returncode == 4, done.stdout + done.stderr
    (churn,) = json.loads(done.stdout)["pipelines"]
    assert [c["path"] for c in churn["changes"]] == ["model.training.epochs"]


def test_a_folder_new_since_the_base_is_all_added(repo):
    shutil.copytree(repo / "specs" / "churn", repo / "more" / "churn_us")
    edit(repo / "more" / "churn_us" / "pipeline.yaml", "name: churn\n", "name: churn_us\n")
    done = loopc(repo, "plan", "more", "--base", "HEAD", "--format", "json")
    assert done.returncode == 4, done.stdout + done.stderr
    assert [(p["name"], p["status"]) for p in json.loads(done.stdout)["pipelines"]] == [("churn_us", "added")]


def test_errors_on_either_side_exit_one_and_name_the_side(repo):
    pipeline = repo / "specs" / "churn" / "pipeline.yaml"
    edit(pipeline, "min_rows: 200\n    min_agreement", "min_rows: -1\n    min_agreement")
    git(repo, "commit", "-q", "-am", "a broken base")
    edit(pipeline, "min_rows: -1\n    min_agreement", "min_rows: 200\n    min_agreement")
    edit(pipeline, "no_champion: promote", "no_champion: promote_all")
    done = loopc(repo, "plan", "specs", "--base", "HEAD")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith("base (HEAD): HEAD:specs/churn/pipeline.yaml:") and "deploy.shadow.min_rows" in line
               for line in lines), done.stdout
    assert any(line.startswith("head (specs): specs/churn/pipeline.yaml:") and "gate.no_champion" in line
               for line in lines), done.stdout
    assert "Traceback" not in done.stderr
    errors = json.loads(loopc(repo, "plan", "specs", "--base", "HEAD", "-f", "json").stdout)["errors"]
    assert sorted(e["side"] for e in errors) == ["base", "head"]


@pytest.mark.parametrize(("args", "message"), [
    (["--base", "no-such-branch"], "not a commit"),
    (["--base-dir", "missing"], "no such file or directory"),
    ([], "one of the arguments --base --base-dir is required"),
])
def test_usage_errors_exit_two(repo, args, message):
    done = loopc(repo, "plan", "specs", *args)
    assert done.returncode == 2 and message in done.stderr, done.stderr


def test_outside_a_git_work_tree_base_is_a_usage_error(tmp_path):
    shutil.copytree(BASE, tmp_path / "specs")
    done = loopc(tmp_path, "plan", "specs", "--base", "HEAD")
    assert done.returncode == 2 and "not inside a git work tree" in done.stderr, done.stderr
    assert loopc(tmp_path, "plan", "specs", "--base-dir", "specs").returncode == 0


def test_markdown_escapes_what_a_spec_wrote():
    change = Change(("pipeline", "description"), "a | b", "<img src=x> `code` *bold* [link](y)")
    diff = PipelineDiff("churn", "changed", "specs/p|ipe.yaml", ("local",), (SpecChange(change, "metadata", "description"),))
    text = to_markdown(PlanReport("main", "specs", (diff,)))
    row = next(line for line in text.splitlines() if "pipeline.description" in line)
    assert row.count("|") - row.count("\\|") == 5  # the table's own pipes only
    assert "<img" not in text and "&lt;img src=x&gt;" in text
    assert "\\`code\\`" in text and "\\*bold\\*" in text and "\\[link\\]" in text


def test_the_base_is_read_as_committed_whatever_the_export_attributes(repo):
    (repo / ".gitattributes").write_text("*.yaml export-ignore\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes that git archive would obey")
    done = loopc(repo, "plan", "specs", "--base", "HEAD", "--format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"] == {"changed": 0, "added": 0, "removed": 0, "unchanged": 2}


def test_every_pipeline_deleted_is_a_change_but_no_pipeline_on_either_side_is_an_error(repo):
    shutil.rmtree(repo / "specs")
    (repo / "specs").mkdir()
    (repo / "specs" / "notes.yaml").write_text("not: a pipeline\n")
    done = loopc(repo, "plan", "specs", "--base", "HEAD", "--format", "json")
    assert done.returncode == 4, done.stdout + done.stderr
    assert json.loads(done.stdout)["summary"] == {"changed": 0, "added": 0, "removed": 2, "unchanged": 0}
    (repo / "other").mkdir()
    done = loopc(repo, "plan", "other", "--base", "HEAD")
    assert done.returncode == 1 and "LPC502" in done.stdout and "no pipeline specs found on either side" in done.stdout


def test_the_base_side_takes_the_plans_of_pipelines_whose_specs_did_not_change(repo, monkeypatch, capsys):
    import loopc.compiler.plan.project as project
    from loopc.compiler.cli.main import main

    planned, plan_project = [], project.plan_project
    monkeypatch.setattr(project, "plan_project", lambda group: planned.append(group[0].display) or plan_project(group))
    monkeypatch.chdir(repo)
    edit(repo / "specs" / "churn" / "model" / "logistic.yaml", "lr: 0.05", "lr: 0.02")
    code = main(["plan", "specs", "--base", "HEAD", "-f", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 4 and [p["name"] for p in report["pipelines"] if p["status"] != "unchanged"] == ["churn"]
    base_churn = [d for d in planned if d.startswith(str(Path(os.sep)))]  # the scratch folder of the base side
    assert sorted(Path(d).parent.name for d in planned if d not in base_churn) == ["churn", "demand"]
    assert [Path(d).parent.name for d in base_churn] == ["churn"]  # demand's plans were the head's


def test_the_base_side_composes_only_the_pipelines_whose_files_changed(repo, monkeypatch, capsys):
    import loopc.compiler.api as api
    from loopc.compiler.cli.main import main

    composed, compose_spec = [], api.compose_spec
    monkeypatch.setattr(api, "compose_spec", lambda file, *a, **k: composed.append(Path(file)) or compose_spec(file, *a, **k))
    monkeypatch.chdir(repo)
    edit(repo / "specs" / "demand" / "dataset" / "store_sales.yaml", "min: 0", "min: 1")  # a config group file only
    code = main(["plan", "specs", "--base", "HEAD", "-f", "json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 4 and {p["name"]: p["status"] for p in report["pipelines"]} == {"churn": "unchanged",
                                                                                  "demand": "changed"}
    assert sorted(str(p) for p in composed if not p.is_absolute()) == ["specs/churn/pipeline.yaml",
                                                                        "specs/demand/pipeline.yaml"]
    assert [p.parent.name for p in composed if p.is_absolute()] == ["demand"]  # the base side, in its scratch folder


def test_head_specs_stand_for_a_base_file_only_when_every_input_is_the_same(tmp_path):
    from loopc.compiler.api import load_project
    from loopc.compiler.cli.plan_reuse import HeadSpecs

    head, base = tmp_path / "head", tmp_path / "base"
    for side in (head, base):
        shutil.copytree(DEMAND, side / "demand", ignore=shutil.ignore_patterns("*.py", "data"))
    loaded = load_project(head)
    pipeline = base / "demand" / "pipeline.yaml"
    hit = HeadSpecs(loaded, head, base).get(str(pipeline))
    assert hit is not None and hit[0].spec is loaded[0].spec and HeadSpecs(loaded, head, base).groups(pipeline)
    assert all(path.startswith(str(base)) for path in hit[0].inputs)
    chosen = base / "demand" / "model" / "mlp.yaml"
    chosen.write_text(chosen.read_text() + "# the same spec, other bytes\n")
    assert HeadSpecs(loaded, head, base).get(str(pipeline)) is None
    assert HeadSpecs(loaded, head, base).is_spec(pipeline) is None
    outside = [replace(loaded[0], inputs=(*loaded[0].inputs, str(tmp_path / "shared.yaml")))]
    shutil.copytree(head / "demand", base / "demand", dirs_exist_ok=True)
    assert HeadSpecs(outside, head, base).get(str(pipeline)) is None
    assert HeadSpecs(loaded, head, base).get(str(pipeline)) is not None


def test_the_command_pauses_the_collector_once(repo, monkeypatch, capsys):
    import gc

    from loopc.compiler.cli.main import main

    for index in range(8):
        copy = repo / "specs" / f"demand{index}"
        shutil.copytree(repo / "specs" / "demand", copy)
        edit(copy / "pipeline.yaml", "name: demand\n", f"name: demand{index}\n")
    monkeypatch.chdir(repo)
    assert main(["plan", "specs", "--base", "HEAD", "-f", "json"]) == 4  # imports everything once
    collections: list[int] = []

    def record(phase: str, info: dict) -> None:
        collections.extend([info["generation"]] if phase == "start" else [])

    gc.callbacks.append(record)
    try:
        assert main(["plan", "specs", "--base", "HEAD", "-f", "json"]) == 4
    finally:
        gc.callbacks.remove(record)
    capsys.readouterr()
    assert len(collections) <= 1  # when the command ends; one per planned pipeline before
