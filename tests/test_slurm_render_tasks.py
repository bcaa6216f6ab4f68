"""resources.tasks_per_node: several srun tasks for training steps only; step documents unchanged at 1."""

from __future__ import annotations

from loopc.compiler.plan.pipeline import Plan, Step, StepResources
from loopc.compiler.targets import EmitOptions
from loopc.compiler.targets.slurm.backend import BACKEND


def _script(kind: str, resources: StepResources) -> str:
    step = Step(f"{kind}.m", kind, kind, {}, (), "f" * 64, resources)
    return BACKEND.render([Plan("p", "train", (step,))], EmitOptions())[f"p/{kind}.m.sbatch"]


def test_training_gets_its_tasks_per_node_through_srun_other_steps_one_task():
    train = _script("train", StepResources(tasks_per_node=2))
    assert "#SBATCH --ntasks-per-node=2\n" in train and "srun --kill-on-bad-exit=1 " in train
    features = _script("features", StepResources(tasks_per_node=2))
    assert "#SBATCH --ntasks-per-node=1\n" in features and "srun" not in features
    single = _script("train", StepResources())
    assert "#SBATCH --ntasks-per-node=1\n" in single and "srun" not in single


def test_step_documents_name_tasks_per_node_only_when_it_is_not_one():
    assert "tasks_per_node" not in StepResources().to_dict()
    assert StepResources(tasks_per_node=4).to_dict()["tasks_per_node"] == 4
