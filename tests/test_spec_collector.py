"""The cyclic garbage collector is paused while a repository is loaded (a third of a full validate)."""

from __future__ import annotations

import gc
import shutil
from contextlib import nullcontext
from pathlib import Path

import pytest

from loopc.compiler.api import load_project, validate_project
from loopc.compiler.spec.collector import collector_paused

EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"


@pytest.fixture
def collections():
    """The automatic collections that start while the test runs."""
    started: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(record)
    yield started
    gc.callbacks.remove(record)


def test_the_collector_is_off_inside_and_on_again_after_an_error():
    assert gc.isenabled()
    with pytest.raises(KeyError), collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause left the outer one alone
        raise KeyError("x")
    assert gc.isenabled()


def test_a_collector_switched_off_by_the_caller_stays_off():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_loading_a_repository_collects_once_at_the_end(tmp_path, collections, monkeypatch):
    import loopc.compiler.api as api

    for index in range(6):
        example = ("churn", "demand")[index % 2]
        target = tmp_path / f"{example}_{index}"
        shutil.copytree(EXAMPLES / example, target, ignore=shutil.ignore_patterns("data", "*.py"))
        pipeline = target / "pipeline.yaml"
        pipeline.write_text(pipeline.read_text().replace(f"  name: {example}\n", f"  name: {example}_{index}\n", 1))
    assert validate_project(tmp_path) == 6  # imports the front end and pydantic
    collections.clear()
    assert len(load_project(tmp_path)) == 6
    assert len(collections) <= 1  # when the collector is switched on again
    collections.clear()
    monkeypatch.setattr(api, "collector_paused", nullcontext)
    assert len(load_project(tmp_path)) == 6
    assert len(collections) > 3  # what the pause spares


def test_writing_compiled_files_starts_no_collection(tmp_path, collections, monkeypatch):
    import loopc.compiler.cli.compile as compile_module

    files = {f"p{index // 50}/steps/s{index}.json": "{}\n" for index in range(6000)}
    collections.clear()
    compile_module.write_files(tmp_path / "paused", files, "local")
    assert len(collections) <= 1  # when the collector is switched on again
    monkeypatch.setattr(compile_module, "collector_paused", nullcontext)
    compile_module.write_files(tmp_path / "running", files, "local")
    assert len(collections) > 3  # what the pause spares
