"""The planner's commands through the real CLI: compile, graph, explain, inventory."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_plan_support import EXAMPLES

from loopc.compiler.cli.compile import MANIFEST
from loopc.compiler.cli.main import main
from loopc.runtime.execution.runs import write_record


@pytest.fixture()
def churn(tmp_path) -> Path:
    """A private copy of the churn example (commands write state under it)."""
    return Path(shutil.copytree(EXAMPLES / "churn", tmp_path / "churn"))


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --------------------------------------------------------------------------- compile


def test_compile_writes_every_file_once_and_is_byte_stable(churn, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = cli(capsys, "compile", churn, "--target", "local", "-o", out)
    assert code == 0 and "churn, churn_monitor" in stdout
    first = tree_bytes(out)
    assert "churn/steps/train.churn_classifier.json" in first and MANIFEST in first
    assert (out / "churn" / "run.sh").stat().st_mode & 0o777 == 0o755
    code, stdout, _ = cli(capsys, "compile", churn, "-o", out)
    assert code == 0 and "(0 changed, 0 stale removed)" in stdout
    assert tree_bytes(out) == first


def test_recompile_removes_only_stale_files_loopc_wrote(churn, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(capsys, "compile", churn, "-o", out)[0] == 0
    (out / "churn" / "steps" / "notes.txt").write_text("mine")
    code, stdout, _ = cli(capsys, "compile", churn, "model=mlp", "-o", out)
    assert code == 0 and "1 stale removed" in stdout
    steps = sorted(p.name for p in (out / "churn" / "steps").iterdir())
    assert "train.churn_classifier.json" not in steps and "notes.txt" in steps
    assert {"train.churn_classifier.t0.json", "select.churn_classifier.json"} <= set(steps)
    assert json.loads((out / MANIFEST).read_text())["files"] == sorted(
        p for p in tree_bytes(out) if p not in (MANIFEST, "churn/steps/notes.txt"))


def test_a_tampered_manifest_never_removes_files_outside_the_folder(churn, tmp_path, capsys):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    victim.write_text("keep")
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps({"format": 1, "target": "local", "files": ["../victim.txt", "/etc/x"]}))
    assert cli(capsys, "compile", churn, "-o", out)[0] == 0
    assert victim.read_text() == "keep"


def test_unknown_target_lists_the_valid_ones(churn, tmp_path, capsys):
    code, _, err = cli(capsys, "compile", churn, "--target", "kubeflow", "-o", tmp_path / "out")
    assert code == 2 and "unknown target 'kubeflow'" in err and "local" in err
    assert not (tmp_path / "out").exists()


def test_every_registered_target_compiles_every_example(tmp_path, capsys):
    from loopc.compiler.targets import backends

    for target in sorted(backends()):
        for example in ("churn", "demand"):
            out = tmp_path / target / example
            code, _, err = cli(capsys, "compile", EXAMPLES / example, "--target", target, "-o", out)
            assert code == 0, f"{target}/{example}: {err}"
            assert json.loads((out / MANIFEST).read_text())["target"] == target


def test_cli_sweep_becomes_trials_of_one_plan(churn, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(capsys, "compile", churn, "model.optimizer.lr=0.1,0.2", "-o", out)[0] == 0
    trials = [json.loads((out / "churn" / "steps" / f"train.churn_classifier.t{i}.json").read_text()) for i in (0, 1)]
    assert [t["config"]["sweep_point"] for t in trials] == [{"optimizer.lr": 0.1}, {"optimizer.lr": 0.2}]
    assert [t["config"]["model"]["optimizer"]["lr"] for t in trials] == [0.1, 0.2]


def test_cli_sweep_over_the_model_group_trains_each_architecture(churn, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli(capsys, "compile", churn, "model=logistic,mlp", "-o", out)[0] == 0
    kinds = [json.loads((out / "churn" / "steps" / f"train.churn_classifier.t{i}.json").read_text())
             ["config"]["model"]["architecture"]["kind"] for i in (0, 1)]
    assert kinds == ["linear", "mlp"]


def test_cli_sweep_outside_the_model_is_refused(churn, tmp_path, capsys):
    code, _, err = cli(capsys, "compile", churn, "gate.split=valid,test", "-o", tmp_path / "out")
    assert code == 1 and "LPC703" in err and "gate" in err


def test_invalid_spec_reports_the_location(churn, tmp_path, capsys):
    code, _, err = cli(capsys, "compile", churn, "model.optimizer.lr=-1", "-o", tmp_path / "out")
    assert code == 1 and "lr" in err and "Traceback" not in err


# --------------------------------------------------------------------------- graph


def test_graph_mermaid_draws_every_step_and_the_reduced_edges(capsys):
    code, out, _ = cli(capsys, "graph", EXAMPLES / "churn", "model=mlp")
    assert code == 0 and out.startswith("flowchart LR\n")
    for step in ("validate.customers", "train.churn_classifier.t1", "select.churn_classifier"):
        assert f'"{step}"' in out
    assert out.count("-->") == 11  # 12 steps in a chain except the two parallel trials
    code, full, _ = cli(capsys, "graph", EXAMPLES / "churn", "model=mlp", "--all-edges")
    assert full.count("-->") > out.count("-->")


def test_graph_dot_and_monitor_plan(capsys):
    code, out, _ = cli(capsys, "graph", EXAMPLES / "demand", "--format", "dot", "--plan", "monitor")
    assert code == 0 and out.startswith('digraph "demand_monitor" {') and out.rstrip().endswith("}")
    assert '"monitor.daily_drift"' in out
    code, out, _ = cli(capsys, "graph", EXAMPLES / "demand", "-f", "dot")
    assert '"validate.store_sales" -> "split.store_sales";' in out


def test_graph_monitor_plan_of_a_spec_without_monitors(churn, capsys):
    code, _, err = cli(capsys, "graph", churn, "~monitors", "--plan", "monitor")
    assert code == 1 and "no monitor plan" in err


# --------------------------------------------------------------------------- explain


def explain(capsys, *argv) -> dict[str, dict[str, tuple[str, str]]]:
    code, out, err = cli(capsys, "explain", *argv, "--format", "json")
    assert code == 0, err
    return {plan: {v["step"]: (v["would"], v["why"]) for v in verdicts} for plan, verdicts in json.loads(out).items()}


def record_run(root: Path, run_id: str, status: str = "done", only: tuple[str, ...] = ()) -> None:
    """Run records as the executor writes them, for every compiled step (or ``only`` these)."""
    state = root / ".loopc"
    for plan_dir in (p.parent for p in (state / "compiled").glob("*/plan.json")):
        manifest = json.loads((plan_dir / "plan.json").read_text())
        for step in (s for s in manifest["steps"] if not only or s["id"] in only):
            write_record(state, run_id, {"step": step["id"], "plan": manifest["plan"], "run_id": run_id,
                                         "fingerprint": step["fingerprint"], "key": "k" + step["id"],
                                         "status": status, "started_at": "2026-11-26T05:00:00Z"})


def test_explain_without_history_runs_everything(churn, capsys):
    verdicts = explain(capsys, churn)
    assert all(would == "run" and why.startswith("new step") for would, why in verdicts["churn"].values())


def test_explain_after_a_run_caches_and_names_the_changed_field(churn, capsys):
    assert cli(capsys, "compile", churn, "-o", churn / ".loopc" / "compiled")[0] == 0
    record_run(churn, "run1")
    same = explain(capsys, churn)["churn"]
    assert same["validate.customers"][0] == "check" and "re-fingerprints the data" in same["validate.customers"][1]
    assert same["train.churn_classifier"] == ("cached", "unchanged since run run1 if the data is unchanged")
    assert same["gate.churn_classifier"][0] == "run"  # decisions are never cached
    changed = explain(capsys, churn, "model.optimizer.lr=0.01", "gate.thresholds.0.min=0.8")["churn"]
    assert changed["split.customers"][0] == "cached" and changed["features.churn_classifier"][0] == "cached"
    assert changed["train.churn_classifier"] == ("run", "config changed: model.optimizer.lr")
    assert changed["gate.churn_classifier"] == ("run", "config changed: gate.thresholds[0].min")
    assert changed["shadow.churn_classifier"] == ("run", "upstream changed: register.churn_classifier, gate.churn_classifier")


def test_explain_reruns_what_failed_last_time(churn, capsys):
    assert cli(capsys, "compile", churn, "-o", churn / ".loopc" / "compiled")[0] == 0
    record_run(churn, "run1")
    record_run(churn, "run2", status="failed", only=("split.customers",))
    verdicts = explain(capsys, churn)["churn"]
    assert verdicts["split.customers"] == ("run", "failed in the last run")
    assert verdicts["features.churn_classifier"] == ("run", "upstream will re-run: split.customers")
    assert verdicts["validate.customers"][0] == "check"


def test_explain_table_is_readable(churn, capsys):
    code, out, _ = cli(capsys, "explain", churn)
    assert code == 0 and "churn (train plan): 9 of 9 steps would run" in out and "why" in out


def test_compiling_for_a_target_the_pipeline_does_not_list_warns(churn, tmp_path, capsys):
    code, _, err = cli(capsys, "compile", churn, "pipeline.targets=[local]", "--target", "slurm", "-o", tmp_path / "o")
    assert code == 0 and "does not list 'slurm' in pipeline.targets" in err


def test_an_unwritable_output_folder_is_a_clear_error(churn, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli(capsys, "compile", churn, "-o", blocker)
    assert code == 1 and "cannot write the compiled files" in err and "-o" in err


def test_a_sweep_over_model_features_is_refused_at_its_override(churn, tmp_path, capsys):
    code, _, err = cli(capsys, "compile", churn, "model.optimizer.lr=0.1,0.2", "model.features=[tenure],[contract]",
                       "-o", tmp_path / "out")
    assert code == 1 and "LPC703 model.features" in err


def test_changed_paths_name_nested_fields_and_list_items():
    from loopc.compiler.cli.explain import changed_paths

    old = {"gate": {"thresholds": [{"metric": "auc", "min": 0.7}], "split": "test"}, "a": 1, "gone": 2}
    new = {"gate": {"thresholds": [{"metric": "auc", "min": 0.8}], "split": "test"}, "a": 1, "added": 3}
    assert changed_paths(old, new) == ["added", "gate.thresholds[0].min", "gone"]
    assert changed_paths({"x": [1, 2]}, {"x": [1, 2, 3]}) == ["x"]
    assert changed_paths({"x": 1}, {"x": 1}) == []
