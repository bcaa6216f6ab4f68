"""Real Slurm, two tasks (srun -n 2): one JAX runtime across both, half the rows each, the one-process model."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.test_train_multiprocess import SCRIPT, _data, _env, _one_process

pytestmark = [pytest.mark.slurm, pytest.mark.xdist_group("slurm"), pytest.mark.usefixtures("slurm_cluster")]


def test_srun_two_tasks_join_one_jax_runtime_from_slurms_environment(tmp_path):
    _data(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT)
    done = subprocess.run(["srun", "-n", "2", "--cpus-per-task=1", f"--output={tmp_path}/task-%t.out",
                           f"--chdir={tmp_path}",
                           sys.executable, str(tmp_path / "train.py"), str(tmp_path)],
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = {task: json.loads((tmp_path / f"task-{task}.out").read_text().strip().splitlines()[-1])
               for task in (0, 1)}  # srun writes task t's stdout to task-t.out
    assert [(results[t]["process"], results[t]["count"]) for t in (0, 1)] == [(0, 2), (1, 2)]
    assert results[0]["reads"] == ["slice(0, 188, None)"] and results[1]["reads"] == ["slice(188, 377, None)"]
    alone = _one_process(tmp_path)
    for name, value in alone["params"].items():
        np.testing.assert_allclose(results[0]["params"][name], value, rtol=1e-5, atol=1e-6, err_msg=name)
    assert results[0]["params"] == results[1]["params"]
