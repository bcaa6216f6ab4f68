"""The Slurm backend orders its jobs topologically and refuses a cycle with a clear error, never silently."""

from __future__ import annotations

import pytest

from loopc.compiler.targets.slurm.backend import Job, SlurmTargetError, _job_order


def jobs(**deps: tuple[str, ...]) -> dict[str, Job]:
    return {name: Job(name, (), tuple(after)) for name, after in deps.items()}


def test_jobs_wait_for_their_dependencies_and_ties_keep_plan_order():
    graph = jobs(c=("a",), b=(), a=(), d=("c", "b"))
    order = [job.name for job in _job_order(graph, ["b", "a", "c", "d"])]
    assert order == ["b", "a", "c", "d"]
    assert [job.name for job in _job_order(graph, ["a", "b", "c", "d"])] == ["a", "b", "c", "d"]


def test_a_dependency_outside_the_plan_does_not_block():
    assert [job.name for job in _job_order(jobs(a=("elsewhere",)), ["a"])] == ["a"]


def test_a_cycle_is_an_error_naming_the_jobs_in_it():
    graph = jobs(a=(), b=("c",), c=("b",), d=("c",))
    with pytest.raises(SlurmTargetError) as error:
        _job_order(graph, ["a", "b", "c", "d"])
    assert str(error.value) == "plan has a dependency cycle among jobs ['b', 'c', 'd']"
