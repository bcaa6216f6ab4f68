"""Step documents and plan manifests are rendered once per plan, whatever the number of targets."""

from __future__ import annotations

import dataclasses

from test_plan_support import example_spec

import loopc.compiler.plan.pipeline as pipeline
from loopc.compiler.plan.pipeline import plan_pipeline, step_json
from loopc.compiler.targets import EmitOptions, backends


def test_every_target_takes_the_step_texts_rendered_once(monkeypatch):
    plans = plan_pipeline(*example_spec("churn")[:1], spec_hash="h")
    rendered, pretty_json = [], pipeline.pretty_json
    monkeypatch.setattr(pipeline, "pretty_json", lambda value: rendered.append(value["id"]) or pretty_json(value))
    outputs = {name: backend.render(plans, EmitOptions()) for name, backend in backends().items()}
    steps = [step.id for plan in plans for step in plan.steps]
    assert sorted(rendered) == sorted(steps)
    local, slurm = outputs["local"], outputs["slurm"]
    assert local[f"churn/steps/{steps[0]}.json"] == slurm[f"churn/steps/{steps[0]}.json"] == step_json(plans[0],
                                                                                                       plans[0].steps[0])


def test_a_plan_with_another_store_renders_its_own_texts():
    plan = plan_pipeline(*example_spec("churn")[:1], spec_hash="h")[0]
    step = plan.steps[0]
    before = step_json(plan, step)
    moved = dataclasses.replace(plan, store="s3://bucket/loopc")
    assert '"store": "s3://bucket/loopc"' in step_json(moved, step) and step_json(plan, step) == before
    assert '"store"' not in before
    other = dataclasses.replace(step, fingerprint="0" * 64)  # another Step under the same id
    assert '"fingerprint": "' + "0" * 64 in step_json(plan, other)


def test_templates_are_compiled_once_and_not_checked_again_on_each_render(monkeypatch):
    import os

    backends()["slurm"].render(plan_pipeline(*example_spec("churn")[:1], spec_hash="h"), EmitOptions())  # compiles
    looked = []
    getmtime = os.path.getmtime
    monkeypatch.setattr(os.path, "getmtime", lambda path: looked.append(path) or getmtime(path))
    backends()["slurm"].render(plan_pipeline(*example_spec("churn")[:1], spec_hash="h"), EmitOptions())
    assert looked == []
