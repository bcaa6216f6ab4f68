"""Step documents and plan manifests are rendered once per plan, whatever the number of targets."""

from __future__ import annotations

import dataclasses

import pytest
from test_plan_support import example_spec

import loopc.compiler.plan.pipeline as pipeline
from loopc.compiler.plan.pipeline import plan_pipeline, step_json
from loopc.compiler.targets import EmitOptions, backends


def test_every_target_takes_the_step_texts_rendered_once(monkeypatch):
    plans = plan_pipeline(*example_spec("churn")[:1], spec_hash="h")
    rendered, values, pretty_json = [], [], pipeline.pretty_json

    def record(value):
        (rendered if isinstance(value, dict) and "fingerprint" in value else values).append(value)
        return pretty_json(value)

    monkeypatch.setattr(pipeline, "pretty_json", record)
    outputs = {name: backend.render(plans, EmitOptions()) for name, backend in backends().items()}
    steps = [step.id for plan in plans for step in plan.steps]
    assert sorted(document["id"] for document in rendered) == sorted(steps)
    model = plans[0].step("evaluate.churn_classifier").config["model"]  # register and monitor steps hold it too
    assert sum(value is model for value in values) == 1
    assert len(values) == len({id(value) for value in values})  # each config value written once, for every plan
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


def test_a_step_text_is_its_document_written_whole():
    from loopc.compiler.plan.pipeline import step_document
    from loopc.compiler.plan.pretty import pretty_json

    for example in ("churn", "demand"):
        for plan in plan_pipeline(*example_spec(example)[:1], spec_hash="h"):
            for step in plan.steps:
                assert step_json(plan, step) == pretty_json(step_document(plan, step)) + "\n"


def test_a_template_renders_as_jinja_renders_it_and_a_missing_name_is_an_error():
    import jinja2

    from loopc.compiler.targets.jinja import environment, render

    context = {"version": "1", "pipeline": "p", "plan": "p", "steps": 3, "python": "python3", "root": None}
    assert render("local", "run.sh.j2", **context) == environment("local").get_template("run.sh.j2").render(context)
    with pytest.raises(jinja2.UndefinedError, match="'python' is undefined"):
        render("local", "run.sh.j2", **{k: v for k, v in context.items() if k != "python"})
