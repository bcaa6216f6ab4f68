"""Hostile text in EVERY string field of the spec: refused with a located error, or inert in every emitted file.

The string fields are found from the pydantic models (a new field is covered without editing this test).
Each one, at every place the churn example (MLP sweep variant) has it, gets hostile text alone: either
``validate_spec`` refuses it with located errors, or it is accepted. Then all accepted places at once
are compiled for every target and every emitted file is checked with its own parser:

- Airflow DAGs: ``ast.parse``; hostile text only inside string literals (tokens) and the same code
  shape as a benign compile (the AST with every string constant blanked is identical);
- shell files (run.sh, submit.sh, *.sbatch): ``bash -n``, then they really run (a recording ``sbatch``
  and a stand-in interpreter first on PATH) and no injected command leaves its marker file;
  ``#SBATCH`` directives are the benign compile's; ``submit.sh --scrontab`` and ``schedule.scrontab``
  are comments, ``#SCRON`` options and one cron line (checked with the spec's cron grammar);
- JSON (plan.json, step documents): parse, and step configs round-trip exactly.
``sbatch --test-only`` (real Slurm, marked ``slurm``) accepts every emitted job script.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

import pytest
from golden_support import write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.compose import ComposedSpec, compose_spec
from loopc.compiler.plan.fingerprint import canonical_json, sha256_text
from loopc.compiler.plan.pipeline import plan_pipeline
from loopc.compiler.spec.cron import cron_problem
from loopc.compiler.spec.models import Spec
from loopc.compiler.spec.validate import validate_spec
from loopc.compiler.targets import EmitOptions, backends

EXAMPLE = Path(__file__).resolve().parents[1] / "specs" / "examples" / "churn" / "pipeline.yaml"
MARK = "loopc-fields-injected"  # every shell payload tries to create a file of this name in the cwd or /tmp
SHELL_PAYLOADS = [
    f"$(touch {MARK}1)", f"`touch {MARK}2`", f"; touch {MARK}3", f"' ; touch {MARK}4 ; '", f'" ; touch {MARK}5 ; "',
    f"\ntouch {MARK}6\n", f"\n#SBATCH --wrap='touch {MARK}7'", f"$'\\x27'; touch {MARK}8",
    f"${{IFS}}touch${{IFS}}/tmp/{MARK}9", f"\u2028touch {MARK}10", f"\r\ntouch /tmp/{MARK}11",
]
OTHER_PAYLOADS = ["'''", '"""', "\\", "\\n", "\x00", "\x1b[2J", "\x7f", "\u2028", "\u2029", "\u0085", "{{ 7 * 7 }}",
                  "{% raw %}", "%(x)s", "%x %j", "#", "é 🙂", "-n", "--", "*", "}}{{", "\t", "\x0b\x0c"]
HOSTILE = st.lists(st.one_of(st.sampled_from(SHELL_PAYLOADS + OTHER_PAYLOADS), st.text(max_size=6)),
                   min_size=1, max_size=5).map("".join)
ALL_AT_ONCE = "".join(SHELL_PAYLOADS + OTHER_PAYLOADS)
SLOT_MARK = "\u00a7"  # ends every placed value, with the place's number: values stay distinct
# Places that must reach the emitted files (so the property cannot pass by refusing everything).
MUST_REACH = {("pipeline", "description"), ("pipeline", "owner"), ("pipeline", "intended_use"),
              ("pipeline", "tags", "*"), ("pipeline", "secrets", "<key>"), ("pipeline", "secrets", "*"),
              ("model", "description"), ("datasets", "*", "description"), ("datasets", "*", "source", "path"),
              ("datasets", "*", "columns", "<key>"), ("monitors", "*", "source", "path")}


# --------------------------------------------------------------------------- the string fields, from the models


def string_slots(model: type[BaseModel] = Spec) -> set[tuple[str, ...]]:
    """Model paths of every str value (``*``: any key or item) and every free-text dict key (``<key>``)."""
    slots: set[tuple[str, ...]] = set()
    for name, field in model.model_fields.items():
        _slots_of(field.annotation, (name,), slots, field.metadata)
    return slots


def _slots_of(tp: Any, path: tuple[str, ...], slots: set[tuple[str, ...]], metadata: list | None = None) -> None:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        _slots_of(args[0], path, slots, list(args[1:]))
    elif origin in (typing.Union, types.UnionType):
        for member in args:
            _slots_of(member, path, slots, metadata)
    elif tp is str:
        slots.add(path)
    elif origin is list:
        _slots_of(args[0], (*path, "*"), slots)
    elif origin is dict:
        key_slots: set[tuple[str, ...]] = set()
        _slots_of(args[0], (*path, "<key>"), key_slots)
        slots.update(key_slots)
        _slots_of(args[1], (*path, "*"), slots)
    elif isinstance(tp, type) and issubclass(tp, BaseModel):
        slots.update((*path, *sub) for sub in string_slots(tp))


def test_the_slot_finder_sees_fields_keys_lists_and_unions() -> None:
    slots = string_slots()
    assert {("pipeline", "description"), ("pipeline", "secrets", "<key>"), ("pipeline", "tags", "*"),
            ("datasets", "<key>"), ("datasets", "*", "checks", "*", "expr"),
            ("features", "*", "transforms", "*", "vocabulary", "*"), ("pipeline", "resources", "partition"),
            ("datasets", "*", "columns", "*", "allowed", "*"), ("monitors", "*", "schedule")} <= slots
    assert ("pipeline", "risk_class") not in slots and ("loopc",) not in slots  # literals are not free text


# --------------------------------------------------------------------------- places in a concrete spec


def base_spec() -> ComposedSpec:
    """The churn example with the MLP sweep, plus the optional parts that carry more string fields."""
    composed = compose_spec(EXAMPLE, ["model=mlp", "+pipeline.secrets={db: DB_PASSWORD}",
                                      "+datasets.customers.source.options={delimiter: ','}",
                                      "+monitors.weekly_drift.source.options={delimiter: ','}",
                                      "+scoring.source.options={delimiter: ','}",
                                      "+monitors.weekly_drift.labels={source: {path: data/labels.parquet, "
                                      "options: {delimiter: ','}}, predictions: predictions, keys: [customer_id], "
                                      "window: 7d, max_drop: {auc: 0.1}}",
                                      "+deploy.shadow.max_metric_drop={auc: 0.05}",
                                      "+monitors.weekly_drift.time_column=snapshot_date",
                                      "+monitors.weekly_drift.window=7d",
                                      "+monitors.weekly_drift.data_drift.columns=[tenure_months]",
                                      "~features.contract.transform",
                                      "+features.contract.transforms=[{kind: onehot, vocabulary: [monthly]}]",
                                      "~features.support_calls.transform",
                                      "+features.support_calls.transforms=[{kind: bucketize, boundaries: [1, 3]}]"])
    checks = composed[0].tree["datasets"]["customers"]["checks"]
    checks.append({"kind": "freshness", "column": "snapshot_date", "max_age": "30d"})
    return composed[0]


def places(tree: dict[str, Any], slot: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Concrete paths of ``slot`` in ``tree``; a missing last field or list is created where its parent is."""
    found: list[tuple[Any, ...]] = []
    _match(tree, slot, (), found)
    return found


def _match(node: Any, slot: tuple[str, ...], at: tuple[Any, ...], found: list[tuple[Any, ...]]) -> None:
    head, rest = slot[0], slot[1:]
    if head == "<key>":
        if isinstance(node, dict):
            found.extend((*at, ("<key>", key)) for key in node)
        return
    children = (list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list)
                else []) if head == "*" else ([(head, node[head])] if isinstance(node, dict) and head in node else [])
    if not rest:
        if children:
            found.extend((*at, key) for key, _ in children)
        elif head == "*" and isinstance(node, list):
            found.append((*at, 0))
        elif head != "*" and isinstance(node, dict):
            found.append((*at, head))
        return
    for key, child in children:
        _match(child, rest, (*at, key), found)
    if not children and head != "*" and isinstance(node, dict) and rest == ("*",):
        found.append((*at, head, 0))  # a missing list of strings: created with one item


def place_value(tree: dict[str, Any], place: tuple[Any, ...], text: str) -> None:
    """Write ``text`` at ``place``; a dict key is renamed, and every reference to the old name follows it."""
    *parents, last = place
    node: Any = tree
    for key, after in zip(parents, [*parents[1:], last]):
        empty = [] if isinstance(after, int) else {}
        if isinstance(node, list) and key >= len(node):
            node.append(empty)
        elif isinstance(node, dict) and key not in node:
            node[key] = empty
        node = node[key]
    if isinstance(last, tuple):
        old = last[1]
        value = node.pop(old)
        node[text] = value
        _rename_references(tree, old, text)
    elif isinstance(node, list) and last >= len(node):
        node.append(text)
    else:
        node[last] = text


def _rename_references(node: Any, old: str, new: str, path: tuple[Any, ...] = ()) -> None:
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in list(items):
        if value == old and path[:2] != ("model", "features"):  # model.features names features, not columns
            node[key] = new
        else:
            _rename_references(value, old, new, (*path, key))


def _check(base: ComposedSpec, tree: dict[str, Any]) -> Spec | list:
    try:
        return validate_spec(ComposedSpec(base.file, tree, base.positions))
    except SpecErrors as exc:
        return exc.errors


def variants(text: str) -> dict[str, str]:
    """The text as given, cut to 90 characters (tags), and without control characters (paths)."""
    printable = "".join(ch for ch in text if ch.isprintable() or ch == " ")
    return {"full": text, "short": text[:90], "printable": printable, "short printable": printable[:90]}


def sort_places(base: ComposedSpec, text: str) -> tuple[list, set, set]:
    """Every (slot, place) with ``text`` alone (or the first of its variants the spec takes there):
    the accepted (slot, place, variant), the slots that reached a spec, all slots tried."""
    accepted, reached, tried = [], set(), set()
    for slot in sorted(string_slots()):
        for place in places(base.tree, slot):
            tried.add(slot)
            for variant, value in variants(text).items():
                tree = copy.deepcopy(base.tree)
                place_value(tree, place, f"{value}{SLOT_MARK}0")
                result = _check(base, tree)
                if isinstance(result, Spec):
                    accepted.append((slot, place, variant))
                    reached.add(slot)
                    break
                assert result and all(e.code.startswith("LPC") and e.line >= 1 and e.message for e in result), result
    return accepted, reached, tried


def with_text(base: ComposedSpec, accepted: list, text: str) -> Spec:
    """The spec with ``text`` + a place number at every accepted place (keys renamed last)."""
    tree = copy.deepcopy(base.tree)
    ordered = sorted(enumerate(accepted), key=lambda item: isinstance(item[1][1][-1], tuple))
    for number, (_, place, variant) in ordered:
        place_value(tree, place, f"{variants(text)[variant]}{SLOT_MARK}{number}")
    result = _check(base, tree)
    assert isinstance(result, Spec), result
    return result


# --------------------------------------------------------------------------- checks of emitted files


def compile_all(spec: Spec, python: str, root: str) -> dict[str, dict[str, str]]:
    spec_hash = sha256_text(canonical_json(spec.model_dump(mode="json")))
    plans = plan_pipeline(spec, spec_hash=spec_hash)
    return {name: backend.render(plans, EmitOptions(python=python, root=root)) for name, backend in backends().items()}


def blank_strings(source: str) -> str:
    """The AST of ``source`` with every string constant blanked: its code shape."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
    return ast.dump(tree)


def check_python(hostile: str, benign: str) -> None:
    assert blank_strings(hostile) == blank_strings(benign), "spec text changed the DAG's code"
    for token in tokenize.generate_tokens(io.StringIO(hostile).readline):
        if SLOT_MARK in token.string:
            assert token.type in (tokenize.STRING, tokenize.COMMENT), token


def directives(text: str, prefix: str) -> list[str]:
    return [line.split("=", 1)[0] for line in text.splitlines() if line.startswith(prefix)]


def check_cron_file(text: str) -> None:
    """Comments, #SCRON options and exactly one entry: a valid cron line and the fixed command."""
    entries = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert len(entries) == 1, text
    fields = entries[0].split()
    schedule, command = (fields[:1], fields[1:]) if fields[0].startswith("@") else (fields[:5], fields[5:])
    assert cron_problem(" ".join(schedule)) is None and command == ["bash", "./submit.sh"], entries


def check_json(files: dict[str, str], plans_by_file: dict[str, dict]) -> None:
    for path, text in files.items():
        if path.endswith(".json"):
            document = json.loads(text)
            if path in plans_by_file:
                assert document["config"] == plans_by_file[path], path


FAKE_SBATCH = """#!/bin/bash
n=$(( $(cat "$FAKE_COUNTER" 2>/dev/null || echo 100) + 1 )); echo "$n" >"$FAKE_COUNTER"; echo "$n"
"""
FAKE_PYTHON = """#!/bin/bash
if [ "${1:-}" = -c ]; then exec "$REAL_PYTHON" "$@"; fi
echo '{"step": "s", "status": "done", "outputs": {"action": "retrain"}}'
"""


def _fake_bin(folder: Path) -> dict[str, str]:
    folder.mkdir()
    for name, body in (("sbatch", FAKE_SBATCH), ("scancel", "#!/bin/bash\n"), ("scontrol", "#!/bin/bash\n"),
                       ("python-stand-in", FAKE_PYTHON)):
        (folder / name).write_text(body)
        (folder / name).chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}", "FAKE_COUNTER": str(folder / "counter"),
            "REAL_PYTHON": sys.executable}


def _bash(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def run_shell_files(out: Path, files: dict[str, str], env: dict[str, str]) -> None:
    """bash -n every script; run run.sh, submit.sh (and --scrontab) and every job script."""
    scripts = [path for path in files if path.endswith((".sh", ".sbatch"))]
    for path in scripts:
        checked = _bash(["-n", str(out / path)], out, env)
        assert checked.returncode == 0, (path, checked.stderr)
    job_env = {**env, "LOOPC_RUN_ID": "r1", "SLURM_ARRAY_TASK_ID": "0", "SLURM_JOB_ID": "7"}
    for path in scripts:
        folder = (out / path).parent
        if path.endswith("run.sh"):
            assert _bash([str(out / path)], folder, env).returncode == 0
        elif path.endswith("submit.sh"):
            assert _bash([str(out / path), "--run-id", "r1"], folder, env).returncode == 0
            if f"{Path(path).parent}/schedule.scrontab" in files:
                printed = _bash([str(out / path), "--scrontab"], folder, env)
                assert printed.returncode == 0
                check_cron_file(printed.stdout)
        else:
            done = _bash([str(out / path)], folder, job_env)
            assert done.returncode == 0, (path, done.stderr)


def no_marks(*folders: Path) -> list[str]:
    return [str(p) for folder in folders for p in folder.rglob(f"{MARK}*")] + [
        str(p) for p in Path("/tmp").glob(f"{MARK}*")]


def check_everything(text: str) -> set[tuple[str, ...]]:
    """Place ``text`` everywhere it is accepted, compile every target, check every file. Returns reached slots."""
    base = base_spec()
    accepted, reached, tried = sort_places(base, text)
    assert tried == string_slots(), f"no place in the base spec for {sorted(string_slots() - tried)}"
    assert MUST_REACH <= reached, sorted(MUST_REACH - reached)
    benign_places = {(slot, repr(place)) for slot, place, _ in sort_places(base, "benign")[0]}
    # a place may take the hostile text and not "benign" (an expression "0#..." is a number and a comment)
    benign_at = [item for item in accepted if (item[0], repr(item[1])) in benign_places]
    hostile_spec, benign_spec = with_text(base, accepted, text), with_text(base, benign_at, "benign")
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        env = _fake_bin(work / "bin")
        python = str(work / "bin" / "python-stand-in")
        (work / "root").mkdir()
        hostile = compile_all(hostile_spec, python, str(work / "root"))
        benign = compile_all(benign_spec, python, str(work / "root"))
        for target, files in hostile.items():
            assert sorted(files) == sorted(benign[target]), target
            for path, content in files.items():
                if path.endswith(".py"):
                    check_python(content, benign[target][path])
                elif path.endswith(".sbatch"):
                    assert directives(content, "#SBATCH") == directives(benign[target][path], "#SBATCH"), path
                elif path.endswith("schedule.scrontab"):
                    check_cron_file(content)
            spec_hash = sha256_text(canonical_json(hostile_spec.model_dump(mode="json")))
            configs = {f"{prefix}{plan.name}/steps/{step.id}.json": json.loads(json.dumps(step.config))
                       for plan in plan_pipeline(hostile_spec, spec_hash=spec_hash) for step in plan.steps
                       for prefix in ("", "loopc_")}
            check_json(files, configs)
            out = write_tree(work / target, files)
            run_shell_files(out, files, env)
        assert no_marks(work) == [], "an injected command ran"
    return reached


@pytest.fixture(autouse=True)
def _clean_marks():
    for stale in Path("/tmp").glob(f"{MARK}*"):
        stale.unlink()


def test_every_payload_at_once_in_every_string_field() -> None:
    reached = check_everything(ALL_AT_ONCE)
    assert len(reached) >= len(MUST_REACH)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=HOSTILE)
def test_hostile_text_in_every_string_field(text: str) -> None:
    check_everything(text)


def test_the_checks_can_fail() -> None:
    """An unquoted value would be caught: the AST shape changes and the marker appears."""
    benign = "x = {}\n".format(repr("a"))
    with pytest.raises(AssertionError):
        check_python("x = 'a' + str(__import__('os').system('id'))\n", benign)
    with pytest.raises(AssertionError):
        check_cron_file("* * * * * touch /tmp/x; :\n")
    with pytest.raises(AssertionError):
        check_cron_file("0 * * * * bash ./submit.sh\n* * * * * id\n")
    with tempfile.TemporaryDirectory() as temp:
        subprocess.run(["bash", "-c", f"echo {SHELL_PAYLOADS[0]}"], cwd=temp, check=True)
        assert no_marks(Path(temp))


@pytest.mark.slurm
def test_sbatch_accepts_every_job_script_with_hostile_text(slurm_cluster) -> None:
    base = base_spec()
    accepted, _, _ = sort_places(base, ALL_AT_ONCE)
    spec = with_text(base, accepted, ALL_AT_ONCE)
    with tempfile.TemporaryDirectory() as temp:
        out = write_tree(Path(temp) / "slurm", compile_all(spec, sys.executable, temp)["slurm"])
        scripts = sorted(out.rglob("*.sbatch"))
        assert scripts
        for script in scripts:
            (script.parent / "logs").mkdir(exist_ok=True)
            done = subprocess.run(["sbatch", "--test-only", script.name], cwd=script.parent, capture_output=True,
                                  text=True, timeout=60)
            assert done.returncode == 0, (script.name, done.stderr)
            assert re.search(r"to start at", done.stderr), done.stderr


@pytest.mark.airflow
def test_airflow_imports_the_hostile_dags_and_their_commands_run_nothing(airflow_python, tmp_path) -> None:
    """Airflow's own DagBag parses the DAGs; the commands it renders pass exactly their arguments."""
    from test_airflow_support import ARGV_DUMP, run_command

    base = base_spec()
    accepted, _, _ = sort_places(base, ALL_AT_ONCE)
    spec = with_text(base, accepted, ALL_AT_ONCE)
    dump = tmp_path / "bin" / "python"
    dump.parent.mkdir()
    dump.write_text(ARGV_DUMP)
    dump.chmod(0o755)
    spec_hash = sha256_text(canonical_json(spec.model_dump(mode="json")))
    files = backends()["airflow"].render(plan_pipeline(spec, spec_hash=spec_hash), EmitOptions(python=str(dump)))
    dags = write_tree(tmp_path / "dags", files)
    job = {"dags_folder": str(dags), "out": str(tmp_path / "report.json"), "migrate": False, "runs": []}
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = dict(os.environ, AIRFLOW_HOME=str(tmp_path / "home"), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False")
    driver = Path(__file__).resolve().parent / "airflow_driver.py"
    done = subprocess.run([airflow_python, str(driver), str(tmp_path / "job.json")], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["import_errors"] == {}
    assert {"loopc_churn", "loopc_churn_monitor"} <= set(report["dags"])
    assert sorted(report["dags"]) == sorted(path.removesuffix(".py") for path in files if path.endswith(".py"))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for dag in report["dags"].values():
        assert dag["description"] == spec.pipeline.description
        assert dag["tags"] == sorted({*spec.pipeline.tags, "loopc"})
        commands = [task["command"] for task in dag["tasks"].values() if "command" in task]
        assert commands
        for command in commands:
            argv = run_command(command, scratch, scratch / "argv", {"LOOPC_ROOT": str(scratch)})
            assert argv[:3] == ["-m", "loopc.runtime", "run-step"] and len(argv) == 8, argv
    assert no_marks(tmp_path) == []


def number_slots(model: type[BaseModel] = Spec) -> set[tuple[str, ...]]:
    """Model paths of every float-typed value (``*``: any key or item), found like string_slots."""
    slots: set[tuple[str, ...]] = set()

    def walk(tp: Any, path: tuple[str, ...]) -> None:
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin is typing.Annotated:
            walk(args[0], path)
        elif origin in (typing.Union, types.UnionType):
            for member in args:
                walk(member, path)
        elif tp is float:
            slots.add(path)
        elif origin is list:
            walk(args[0], (*path, "*"))
        elif origin is dict:
            walk(args[1], (*path, "*"))
        elif isinstance(tp, type) and issubclass(tp, BaseModel):
            for name, field in tp.model_fields.items():
                walk(field.annotation, (*path, name))

    walk(model, ())
    return slots


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_no_number_field_takes_nan_or_infinity(value: float) -> None:
    """Every float field of the models, somewhere in the base spec: refused as not finite (LPC105) there.

    A place created on another member of a union (``boundaries`` on a onehot transform) is refused as an
    unknown key instead; every slot still needs one place where the value itself is refused.
    """
    base = base_spec()
    refused_as_non_finite = set()
    for slot in sorted(number_slots()):
        for place in places(base.tree, slot):
            tree = copy.deepcopy(base.tree)
            place_value(tree, place, value)  # type: ignore[arg-type]
            result = _check(base, tree)
            assert not isinstance(result, Spec), (place, value)
            dotted = ".".join(str(p) for p in place)
            if any(e.code == "LPC105" and "finite" in e.message and e.spec_path.replace("[", ".").replace("]", "")
                   == dotted for e in result):
                refused_as_non_finite.add(slot)
            else:
                assert {e.code for e in result} & {"LPC101", "LPC107"}, (place, result)
    assert refused_as_non_finite == number_slots(), sorted(number_slots() - refused_as_non_finite)
