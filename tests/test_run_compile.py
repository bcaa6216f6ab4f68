"""`loopc run` compiles into content-addressed folders, checks its run id first, and refuses a foreign state folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from loopc.compiler.cli.main import main as loopc_main
from loopc.compiler.cli.run import LATEST, compile_local, latest_compiled

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn"


@pytest.fixture
def churn(tmp_path) -> Path:
    """The churn example without data: compiles, and a run stops at its first step."""
    return Path(shutil.copytree(EXAMPLE, tmp_path / "churn", ignore=shutil.ignore_patterns("data", ".loopc")))


def _train_lr(plan: Path) -> float:
    return json.loads((plan.parent / "steps" / "train.churn_classifier.json").read_text())["config"]["model"][
        "optimizer"]["lr"]


def test_each_override_set_gets_its_own_folder_and_a_repeat_reuses_it_untouched(churn):
    plans = {lr: compile_local(churn / "pipeline.yaml", [f"model.optimizer.lr={lr}"])[0] for lr in (0.011, 0.012)}
    paths = {lr: compiled.train_plan for lr, compiled in plans.items()}
    assert paths[0.011] != paths[0.012]
    assert {lr: _train_lr(path) for lr, path in paths.items()} == {0.011: 0.011, 0.012: 0.012}
    folder = paths[0.011].parents[1]
    assert folder.parent == churn / ".loopc" / "compiled" / "churn" and len(folder.name) == 64
    assert plans[0.011].monitor_plan == folder / "churn_monitor" / "plan.json"
    inodes = {p: p.stat().st_ino for p in folder.rglob("*") if p.is_file()}
    again = compile_local(churn / "pipeline.yaml", ["model.optimizer.lr=0.011"])[0].train_plan
    assert again == paths[0.011]
    assert {p: p.stat().st_ino for p in folder.rglob("*") if p.is_file()} == inodes  # nothing rewritten
    assert (folder.parent / LATEST).read_text().strip() == folder.name
    assert latest_compiled(churn / ".loopc", "churn") == folder


def test_explain_reads_the_plan_loopc_run_compiled_last(churn, capsys):
    compile_local(churn / "pipeline.yaml")
    assert loopc_main(["explain", str(churn), "--format", "json"]) == 0
    verdicts = {v["step"]: v["why"] for v in json.loads(capsys.readouterr().out)["churn"]}
    assert verdicts["validate.customers"] == "compiled but never run"
    assert not any(why.startswith("new step") for why in verdicts.values())


def test_an_invalid_run_id_is_a_usage_error_and_compiles_nothing(churn, capsys):
    assert loopc_main(["run", str(churn / "pipeline.yaml"), "--run-id", "no spaces"]) == 2
    assert "run id 'no spaces'" in capsys.readouterr().err
    assert not (churn / ".loopc").exists()


def test_loopc_run_refuses_a_state_folder_another_project_claimed(churn, tmp_path, capsys):
    other = Path(shutil.copytree(churn, tmp_path / "other"))
    shared = ["+pipeline.state_dir=../shared"]
    assert loopc_main(["run", str(churn / "pipeline.yaml"), *shared, "--run-id", "mine"]) == 1  # no data: fails
    capsys.readouterr()
    assert loopc_main(["run", str(other / "pipeline.yaml"), *shared, "--run-id", "theirs"]) == 1
    err = capsys.readouterr().err
    assert f"belongs to the project at {churn.resolve()}, not to {other.resolve()}" in err
    assert "pipeline.state_dir" in err
    assert sorted(p.name for p in (tmp_path / "shared" / "runs").iterdir()) == ["mine"]


def test_loopc_run_refuses_to_resume_a_run_with_other_overrides(churn, capsys):
    assert loopc_main(["run", str(churn / "pipeline.yaml"), "--run-id", "r1"]) == 1  # no data: validate fails
    capsys.readouterr()
    assert loopc_main(["run", str(churn / "pipeline.yaml"), "model.optimizer.lr=0.02", "--run-id", "r1"]) == 2
    err = capsys.readouterr().err
    assert "run 'r1' was started with another plan" in err and "leave out --run-id" in err
    assert loopc_main(["run", str(churn / "pipeline.yaml"), "--run-id", "r1"]) == 1  # the same plan resumes
    assert "started with another plan" not in capsys.readouterr().err
