"""Hostile strings in every free-text field never run as shell code in the emitted Slurm scripts.

The scripts really run here: submit.sh with a recording ``sbatch`` test double first on PATH (a
stand-in for the CLI only in this property test; tests/test_slurm_engine.py uses the real Slurm),
and every .sbatch script body with a stand-in interpreter, including a monitor's retrain hand-off.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from golden_support import write_tree
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopc.compiler.plan.pipeline import Plan, Step, StepResources
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.slurm.backend import BACKEND

MARK = "/tmp/loopc-slurm-injected"  # every payload tries to create this file (or a sibling)
PAYLOADS = [
    f"$(touch {MARK}1)", f"`touch {MARK}2`", f"; touch {MARK}3", f"' ; touch {MARK}4 ; '", f'" ; touch {MARK}5 ; "',
    f"\ntouch {MARK}6\n", f"\n#SBATCH --wrap='touch {MARK}7'", f"$'\\x27'; touch {MARK}8", "#", "\\", "%x %j",
    f"${{IFS}}touch${{IFS}}{MARK}9", "🚀 ünïcødé – ", "x" * 300, "}}{{ {% raw %}", "*", "-n", "--",
]
FREE_TEXT = st.lists(st.one_of(st.sampled_from(PAYLOADS), st.text(max_size=12)), min_size=1, max_size=4).map("".join)
NAME_TEXT = FREE_TEXT.map(lambda s: "".join(ch for ch in s if ch.isprintable() and ch not in "\t") or "x")
PATH_TEXT = NAME_TEXT.map(lambda s: s.replace("/", "_").replace("\0", "")[:120] or "x")

FAKE_SBATCH = """#!/bin/bash
printf '%s\\n' "$@" >>"$FAKE_LOG"
n=$(( $(cat "$FAKE_COUNTER" 2>/dev/null || echo 100) + 1 )); echo "$n" >"$FAKE_COUNTER"; echo "$n"
"""
FAKE_PYTHON = """#!/bin/bash
if [ "${1:-}" = -c ]; then exec "$REAL_PYTHON" "$@"; fi
echo "stand-in runtime: $*" >&2
echo '{"step": "s", "status": "done", "outputs": {"action": "retrain"}}'
"""


def _plans(text: dict[str, str]) -> list[Plan]:
    res = StepResources(partition=text["partition"], account=text["account"], qos=text["qos"],
                        retries=1, retry_delay_s=0)
    trials = [Step(f"train.m.t{i}", "train", "train", {}, ("validate.d",), "f" * 64, res, array="train.m",
                   array_index=i, description=text["step"]) for i in range(2)]
    train = Plan("p", "train", (
        Step("validate.d", "validate", "data", {"x": text["step"]}, (), "f" * 64, res, description=text["step"]),
        *trials,
        Step("select.m", "select", "train", {"sweep": {"concurrency": 1}, "trials": [t.id for t in trials]},
             tuple(t.id for t in trials), "f" * 64, res),
    ), description=text["plan"], owner=text["plan"])
    monitor = Plan("p", "monitor", (Step("monitor.w", "monitor", "monitor", {}, (), "f" * 64, res,
                                         description=text["step"]),),
                   description=text["plan"], schedule="0 * * * *", triggers="p")
    return [train, monitor]




def _fake_bin(folder: Path) -> dict[str, str]:
    folder.mkdir()
    for name, body in (("sbatch", FAKE_SBATCH), ("scancel", "#!/bin/bash\n"), ("scontrol", "#!/bin/bash\n"),
                       ("python-stand-in", FAKE_PYTHON)):
        (folder / name).write_text(body)
        (folder / name).chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}", "FAKE_LOG": str(folder / "sbatch.log"),
            "FAKE_COUNTER": str(folder / "counter"), "REAL_PYTHON": sys.executable}


@pytest.fixture(autouse=True)
def _clean_marks():
    for stale in Path("/tmp").glob("loopc-slurm-injected*"):
        stale.unlink()


def _no_marks() -> list[str]:
    return [str(p) for p in Path("/tmp").glob("loopc-slurm-injected*")]


def _run_all(tmp: Path, text: dict[str, str], python: str, root_name: str) -> None:
    out = tmp / f"out {root_name}"
    root = tmp / f"root {root_name}"
    root.mkdir()
    write_tree(out, BACKEND.render(_plans(text), EmitOptions(python=python, root=str(root))))
    env = _fake_bin(tmp / "bin")
    submit = subprocess.run(["bash", str(out / "p" / "submit.sh"), "--run-id", "r1"], cwd=tmp, env=env,
                            capture_output=True, text=True, timeout=60)
    assert submit.returncode == 0, submit.stderr
    assert (out / "p" / "submitted" / "r1.json").is_file()
    scron = subprocess.run(["bash", str(out / "p_monitor" / "submit.sh"), "--scrontab"], cwd=tmp, env=env,
                           capture_output=True, text=True, timeout=60)
    chdir = next(line for line in scron.stdout.splitlines() if line.startswith("#SCRON --chdir="))
    assert shlex.split(chdir.split("=", 1)[1]) == [str((out / "p_monitor").resolve())]
    job_env = {**env, "LOOPC_RUN_ID": "r1", "SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_ID": "7"}
    stand_in = {"LOOPC_PYTHON": str(tmp / "bin" / "python-stand-in")}
    for plan, script, extra in (("p", "validate.d", {}), ("p", "validate.d", stand_in), ("p", "train.m", stand_in),
                                ("p_monitor", "monitor.w", stand_in)):
        run = subprocess.run(["bash", str(out / plan / f"{script}.sbatch")], cwd=out / plan,
                             env={**job_env, **extra}, capture_output=True, text=True, timeout=60)
        # the hostile interpreter path stays one word: not found (127) or not runnable (126)
        assert run.returncode in ((0,) if extra else (126, 127)), run.stderr
    # the monitor's retrain verdict submitted the training plan again, under a fresh run id; once per run
    assert len(list((out / "p" / "submitted").glob("*.json"))) == 2
    again = subprocess.run(["bash", str(out / "p_monitor" / "monitor.w.sbatch")], cwd=out / "p_monitor",
                           env={**job_env, **stand_in}, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "already submitted plan p" in again.stdout
    assert len(list((out / "p" / "submitted").glob("*.json"))) == 2


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=FREE_TEXT, step=FREE_TEXT, partition=NAME_TEXT, account=NAME_TEXT, qos=NAME_TEXT,
       python=NAME_TEXT, root=PATH_TEXT)
def test_hostile_text_never_runs_when_the_scripts_run(plan, step, partition, account, qos, python, root):
    text = {"plan": plan, "step": step, "partition": partition, "account": account, "qos": qos}
    with tempfile.TemporaryDirectory() as folder:
        _run_all(Path(folder), text, f"./{python}", root)
    assert _no_marks() == []


def test_every_payload_in_every_field_at_once():
    payload = "".join(PAYLOADS)
    name = "".join(ch for ch in payload if ch.isprintable() and ch != "\t")
    text = {"plan": payload, "step": payload, "partition": name, "account": name, "qos": name}
    with tempfile.TemporaryDirectory() as folder:
        _run_all(Path(folder), text, f"./{name[:200]}", name.replace("/", "_")[:120])
    assert _no_marks() == []
