"""Hostile text in every free-text spec field and option: emitted DAGs parse, values round-trip, nothing runs."""

from __future__ import annotations

import ast
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from golden_support import write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_airflow_support import ARGV_DUMP, dag_literals, rendered_commands, run_command
from test_plan_support import EXAMPLES, compose_tree, spec_from_tree

from loopc.compiler.plan.pipeline import plan_pipeline
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.airflow.backend import BACKEND

MARKER = "PWNED"
SNIPPETS = [
    "'", '"', "'''", '"""', "\\", "\\n", "\n", "\r\n", "\t", f"$(touch {MARKER})", f"`touch {MARKER}`",
    f"; touch {MARKER}", f"' ; touch {MARKER} #", "{{ 7 * 7 }}", "{{ run_id }}", "{% raw %}", "{% endraw %}",
    "{# x #}", "%s", "%(x)s", "%", "${HOME}", "$LOOPC_ROOT", "é", "ß", "\u2028", "🙂", "\x00", "<b>x</b>",
    " x.md", ".sh", "#", "}}", "{{",
]
hostile = st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=12)), max_size=8).map("".join)
# very long text, cheap to draw: a hostile chunk repeated hundreds of times
long_text = st.builds(lambda chunk, times: (chunk + f"{{{{ x }}}}'$(touch {MARKER})\"\n") * times,
                      hostile, st.integers(200, 600))
free_text = st.one_of(hostile, hostile, long_text)
tag = hostile.map(lambda text: text[:100])
# paths take any text but control characters (the spec refuses those, LPC106)
path_text = hostile.map(lambda text: "".join(ch for ch in text if ord(ch) >= 32 and ord(ch) != 127))
# a file-name component: no '/', no NUL, short enough for the file system
name_part = hostile.map(lambda t: t.replace("/", "_").replace("\x00", "_").encode()[:60].decode("utf-8", "ignore"))
dir_name = name_part.filter(lambda t: t not in ("", ".", ".."))


def hostile_tree(text: dict[str, Any]) -> dict[str, Any]:
    """The churn example with every free-text field replaced by hostile text."""
    tree = compose_tree(EXAMPLES / "churn" / "pipeline.yaml")
    pipeline = tree["pipeline"]
    pipeline.update(description=text["description"], owner=text["owner"], intended_use=text["intended_use"],
                    tags=text["tags"], secrets={text["secret_name"]: text["secret_ref"]})
    dataset = tree["datasets"]["customers"]
    dataset["description"] = text["dataset_description"]
    dataset["source"]["path"] = text["source_path"] or "x"
    for column in dataset["columns"].values():
        column["description"] = text["column_description"]
    for feature in tree["features"].values():
        feature["description"] = text["feature_description"]
    tree["model"]["description"] = text["model_description"]
    tree["monitors"]["weekly_drift"]["source"]["path"] = text["monitor_path"] or "y"
    return tree


texts = st.fixed_dictionaries({
    "description": free_text, "owner": hostile, "intended_use": free_text, "tags": st.lists(tag, max_size=4),
    "secret_name": hostile, "secret_ref": hostile, "dataset_description": free_text, "source_path": path_text,
    "column_description": free_text, "feature_description": hostile, "model_description": free_text,
    "monitor_path": path_text,
})


def check_literals(files: dict[str, str], spec: Any) -> None:
    """The DAG arguments carry the spec's text exactly."""
    pipeline = spec.pipeline
    for path in ("loopc_churn.py", "loopc_churn_monitor.py"):
        ast.parse(files[path])
        dag = dag_literals(files[path])
        assert dag["description"] == (pipeline.description or None)
        assert dag["tags"] == list(dict.fromkeys([*pipeline.tags, "loopc"]))
        assert dag.get("default_args", {}).get("owner") == pipeline.owner
        for value in (pipeline.description, pipeline.intended_use, pipeline.owner):
            assert value in dag["doc_md"]
        assert not dag["doc_md"].endswith(".md")


def check_step_documents(files: dict[str, str], spec: Any) -> None:
    """Step documents round-trip the spec's text (the runtime reads them as JSON, never through a shell)."""
    register = json.loads(files["loopc_churn/steps/register.churn_classifier.json"])
    assert register["config"]["pipeline"] == spec.pipeline.model_dump(mode="json")
    validate = json.loads(files["loopc_churn/steps/validate.customers.json"])
    assert validate["config"]["dataset"] == spec.datasets["customers"].model_dump(mode="json")


def check_commands_run_nothing(files: dict[str, str], dags: Path, python: Path, root: str | None,
                               run_id: str, scratch: Path) -> None:
    """Tasks' rendered commands pass exactly their arguments to the interpreter (first and last task per DAG)."""
    for dag_file in ("loopc_churn.py", "loopc_churn_monitor.py"):
        commands = list(rendered_commands(dags / dag_file).items())
        for task_id, command in {commands[0], commands[-1]}:
            env = {"AIRFLOW_CTX_DAG_RUN_ID": run_id, "LOOPC_ROOT": "/env/root"}
            argv = run_command(command, scratch, scratch / "argv", env)
            steps = dags / dag_file.removesuffix(".py") / "steps" / f"{task_id}.json"
            assert argv == ["-m", "loopc.runtime", "run-step", str(steps),
                            "--root", root if root is not None else "/env/root", "--run-id", run_id]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(text=texts, python_dir=dir_name, dags_dir=dir_name, root=st.one_of(st.none(), hostile.filter(
    lambda t: "\x00" not in t)), run_id=hostile.filter(lambda t: "\x00" not in t))
def test_hostile_spec_and_options_are_inert(text, python_dir, dags_dir, root, run_id):
    spec, spec_hash = spec_from_tree(hostile_tree(text))
    with tempfile.TemporaryDirectory() as temp:
        base = Path(temp)
        python = base / "bin" / python_dir / "python"
        python.parent.mkdir(parents=True)
        python.write_text(ARGV_DUMP)
        python.chmod(0o755)
        files = BACKEND.render(plan_pipeline(spec, spec_hash=spec_hash), EmitOptions(python=str(python), root=root))
        dags = write_tree(base / "dags" / dags_dir, files)
        check_literals(files, spec)
        check_step_documents(files, spec)
        scratch = base / "scratch"
        scratch.mkdir()
        check_commands_run_nothing(files, dags, python, root, run_id, scratch)
        assert not [p for p in base.rglob(MARKER) if p.is_file()], "an injected command ran"
        assert not Path(os.getcwd(), MARKER).exists()


def test_the_marker_check_can_fail(tmp_path):
    """The property above detects injection: an unquoted command does create the marker."""
    import subprocess

    subprocess.run(["bash", "-c", f"echo $(touch {MARKER})"], cwd=tmp_path, check=True)
    assert (tmp_path / MARKER).exists()
