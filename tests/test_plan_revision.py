"""``loopc plan --base REV`` reads the base side from git's objects: files are written out only when read."""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from test_plan_cli import BASE, DEMAND, edit, git, loopc
from test_selectors import cancer_table

from loopc.compiler.api import _yaml_files
from loopc.compiler.diff.checkout import Revision, revision_of

CANCER = Path(__file__).parent / "fixtures" / "selectors" / "breast_cancer" / "pipeline.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A base commit with churn and demand under specs/, an executable file, a symbolic link and a submodule."""
    root = tmp_path / "project"
    shutil.copytree(BASE, root / "specs" / "churn")
    shutil.copytree(DEMAND, root / "specs" / "demand", ignore=shutil.ignore_patterns("*.py"))
    (root / "specs" / "demand" / "tools").mkdir()
    (root / "specs" / "demand" / "tools" / "run.sh").write_text("#!/bin/sh\n")
    (root / "specs" / "demand" / "tools" / "run.sh").chmod(0o755)
    (root / "specs" / "notes.yaml").write_text("not: a pipeline\n")
    (root / "specs" / "linked.yaml").symlink_to("notes.yaml")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    head = git(root, "rev-parse", "HEAD").strip()
    git(root, "update-index", "--add", "--cacheinfo", f"160000,{head},specs/vendored")  # a submodule
    git(root, "commit", "-q", "-m", "a submodule")
    return root


def plan_json(repo: Path, *args: str, code: int = 4) -> dict:
    done = loopc(repo, "plan", *args, "-f", "json")
    assert done.returncode == code, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def base_copy(repo: Path, folder: Path) -> Path:
    """``git archive HEAD specs`` unpacked under ``folder``: the base side written out in full."""
    data = git_bytes(repo, "archive", "--format=tar", "HEAD", "specs")
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(folder, filter="tar")
    return folder / "specs"


def git_bytes(repo: Path, *args: str) -> bytes:
    import subprocess

    return subprocess.run(["git", *args], cwd=repo, capture_output=True, check=True).stdout


def test_the_listing_walks_like_os_walk_and_leaves_links_and_submodules_out(repo):
    with revision_of(repo / "specs", "HEAD") as (base, names, revision):
        assert list(Path(revision.scratch).rglob("*")) == [base]  # nothing written yet
        listed = _yaml_files(base, revision.walk)
        assert revision.need_all() and not revision.need_all()
        assert listed == _yaml_files(base, os.walk) and listed  # the same names, as discovery spells them
        assert names == {f"{revision.scratch}/": "HEAD:"}
        assert not (base / "linked.yaml").exists() and not (base / "vendored").exists()
        assert revision.digest(str(base / "linked.yaml")) == revision.digest(str(base / "vendored")) == "absent"
        run_sh = base / "demand" / "tools" / "run.sh"
        assert run_sh.read_text() == "#!/bin/sh\n"
        pipeline = "specs/churn/pipeline.yaml"
        assert revision.digest(str(base / "churn" / "pipeline.yaml")) == git(repo, "rev-parse", f"HEAD:{pipeline}").strip()
        assert revision.work_tree_digest(str(repo / pipeline)) == git(repo, "hash-object", pipeline).strip()
        assert revision.digest(str(base / "churn" / "model")) == revision.work_tree_digest(str(repo / "specs")) == "dir"
        assert revision.work_tree_digest(str(repo / "specs" / "none.yaml")) == "absent"
    assert not Path(revision.scratch).exists()


def test_need_writes_a_file_or_a_folder_once_and_nothing_outside(repo):
    with revision_of(repo / "specs", "HEAD") as (base, _, revision):
        scratch = Path(revision.scratch)
        group = base / "churn" / "model"
        assert revision.need(str(group / "logistic.yaml")) and not revision.need(str(group / "logistic.yaml"))
        assert [p.relative_to(scratch).as_posix() for p in scratch.rglob("*.yaml")] == ["specs/churn/model/logistic.yaml"]
        assert revision.need(str(base / "churn"))
        assert sorted(p.name for p in group.iterdir()) == sorted(p.name for p in (repo / "specs" / "churn" / "model").iterdir())
        assert not (base / "demand").exists()
        # written whole under a temporary name and renamed (--jobs workers may write the same file): no leftovers
        assert (group / "logistic.yaml").read_bytes() == (repo / "specs" / "churn" / "model" / "logistic.yaml").read_bytes()
        assert not list(scratch.rglob("*.partial"))
        assert not revision.need(str(repo / "specs" / "demand" / "pipeline.yaml"))  # outside the scratch folder
        assert not revision.need(str(base / "no-such.yaml")) and not revision.need(str(scratch.parent))


def test_a_pipeline_file_named_directly_is_written_at_once(repo):
    with revision_of(repo / "specs" / "demand" / "pipeline.yaml", "HEAD") as (base, _, revision):
        assert base.read_bytes() == (repo / "specs" / "demand" / "pipeline.yaml").read_bytes()
        assert not (base.parent / "model").exists()


def test_only_the_changed_pipelines_files_are_written(repo, monkeypatch, capsys):
    from loopc.compiler.cli.main import main

    written: list[str] = []
    write = Revision._write
    monkeypatch.setattr(Revision, "_write", lambda self, names: written.extend(names) or write(self, names))
    monkeypatch.chdir(repo)
    edit(repo / "specs" / "demand" / "dataset" / "store_sales.yaml", "min: 0", "min: 1")
    assert main(["plan", "specs", "--base", "HEAD", "-f", "json"]) == 4
    report = json.loads(capsys.readouterr().out)
    assert {p["name"]: p["status"] for p in report["pipelines"]} == {"churn": "unchanged", "demand": "changed"}
    discovered = [name for name in written if not name.startswith("specs/demand/")]
    assert discovered == ["specs/notes.yaml"], written  # discovery reads a YAML file that is not a pipeline's
    assert "specs/demand/dataset/store_sales.yaml" in written


def _rename_folder(repo: Path) -> None:
    shutil.move(repo / "specs" / "demand", repo / "specs" / "forecast")


def _delete_an_option(repo: Path) -> None:
    (repo / "specs" / "demand" / "model" / "linear.yaml").unlink()


def _add_an_option(repo: Path) -> None:
    shutil.copy(repo / "specs" / "churn" / "model" / "logistic.yaml", repo / "specs" / "churn" / "model" / "other.yaml")


def _group_changed_on_the_base_only(repo: Path) -> None:
    group = repo / "specs" / "demand" / "dataset" / "store_sales.yaml"
    original = group.read_text()
    edit(group, "min: 0", "min: 2")
    git(repo, "commit", "-q", "-am", "the base changes a group file")
    group.write_text(original)


def _group_file_becomes_a_link(repo: Path) -> None:
    group = repo / "specs" / "churn" / "model" / "logistic.yaml"
    shutil.copy(group, repo / "logistic.yaml")
    group.unlink()
    group.symlink_to(repo / "logistic.yaml")  # the same bytes, read through a link: no change


def _pipeline_becomes_a_new_file(repo: Path) -> None:
    edit(repo / "specs" / "churn" / "pipeline.yaml", "name: churn\n", "name: churn_v2\n")


@pytest.mark.parametrize("change", [_rename_folder, _delete_an_option, _add_an_option, _group_changed_on_the_base_only,
                                    _group_file_becomes_a_link, _pipeline_becomes_a_new_file])
def test_the_report_equals_one_against_a_full_copy_of_the_base(repo, tmp_path, change):
    change(repo)
    copy = base_copy(repo, tmp_path / "copy")
    done = loopc(repo, "plan", "specs", "--base", "HEAD", "-f", "json")
    full = loopc(repo, "plan", "specs", "--base-dir", str(copy), "-f", "json")
    assert done.returncode == full.returncode and not done.stderr, done.stdout + done.stderr
    ours, theirs = json.loads(done.stdout.replace("HEAD:specs/", "BASE/")), json.loads(full.stdout.replace(f"{copy}/", "BASE/"))
    assert (ours.pop("base"), theirs.pop("base")) == ("HEAD", str(copy))
    assert ours == theirs


def _cancer_repo(root: Path, columns: dict) -> Path:
    """specs/cancer/pipeline.yaml reading its columns from data/cancer.parquet, outside the pipeline's folder."""
    spec = yaml.safe_load(CANCER.read_text())
    spec["datasets"]["cancer"]["columns"] = columns
    spec["features"] = {"radius": {"column": "mean radius", "transform": "standardize"}}
    spec["model"]["features"] = ["radius"]
    (root / "specs" / "cancer").mkdir(parents=True)
    (root / "specs" / "cancer" / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    (root / "data").mkdir()
    pq.write_table(cancer_table(rows=20), root / "data" / "cancer.parquet")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    edit(root / "specs" / "cancer" / "pipeline.yaml", "owner: oncology-ml@example.com\n",
         "owner: oncology-ml@example.com\n  description: changed\n")
    return root


@pytest.mark.parametrize("columns", [
    {"from": "../../data/cancer.parquet"},  # without the file: an error, so every file is written and read again
    {"from": "../../data/cancer.parquet", "mean radius": {"type": "float"},  # without it: these two columns only
     "malignant": {"type": "bool", "nullable": False}},
], ids=["an-error-without-it", "silently-different-without-it"])
def test_a_file_read_outside_the_pipelines_folder_is_written_and_the_side_loaded_again(tmp_path, columns):
    root = _cancer_repo(tmp_path / "project", columns)
    report = plan_json(root, ".", "--base", "HEAD")
    (cancer,) = report["pipelines"]
    assert [c["path"] for c in cancer["changes"]] == ["pipeline.description"], cancer


def test_a_file_outside_the_compared_folder_or_the_repository(tmp_path):
    root = _cancer_repo(tmp_path / "project", {"from": str(tmp_path / "outside.parquet")})
    pq.write_table(cancer_table(rows=20), tmp_path / "outside.parquet")  # not in the repository: both sides read it
    (cancer,) = plan_json(root, "specs", "--base", "HEAD")["pipelines"]
    assert [c["path"] for c in cancer["changes"]] == ["pipeline.description"], cancer
    edit(root / "specs" / "cancer" / "pipeline.yaml", str(tmp_path / "outside.parquet"), "../../data/cancer.parquet")
    git(root, "commit", "-q", "-am", "columns from the repository, outside the compared folder")
    edit(root / "specs" / "cancer" / "pipeline.yaml", "description: changed", "description: changed again")
    report = plan_json(root, "specs", "--base", "HEAD", code=1)  # the base side has no data/ (as with --base-dir)
    assert [(e["side"], e["code"]) for e in report["errors"]] == [("base", "LPC413")], report


def test_worker_processes_give_the_same_report(repo):
    edit(repo / "specs" / "demand" / "dataset" / "store_sales.yaml", "min: 0", "min: 1")
    edit(repo / "specs" / "churn" / "pipeline.yaml", "owner: growth-ml@example.com", "owner: retention-ml@example.com")
    one = plan_json(repo, "specs", "--base", "HEAD")
    assert plan_json(repo, "specs", "--base", "HEAD", "--jobs", "2") == one
    assert {p["name"]: p["status"] for p in one["pipelines"]} == {"churn": "changed", "demand": "changed"}
