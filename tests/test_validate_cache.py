"""The validate cache (compiler/spec/cache.py): a hit gives exactly what validating gives, and any change
to a file composition read or looked for, or to loopc's code, is a miss."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import loopc.compiler.api as api
from loopc.compiler.api import load_project
from loopc.compiler.cli.main import main
from loopc.compiler.errors import SpecErrors
from loopc.compiler.spec import cache as cache_module
from loopc.compiler.spec.cache import ValidateCache

BASE = Path(__file__).resolve().parent / "diff_cases" / "base"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(BASE, tmp_path / "specs")
    return tmp_path / "specs"


@pytest.fixture
def cache(tmp_path: Path) -> ValidateCache:
    return ValidateCache(tmp_path / "cache")


def facts(loaded) -> list[tuple]:
    return [(i.spec, i.spec_hash, i.sweep_point, i.positions, i.file, i.display) for i in loaded]


def refuse_to_compose(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("composed although the cache holds the result")
    monkeypatch.setattr(api, "compose_spec", refuse)
    monkeypatch.setattr(api, "read_spec_file", refuse)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("overrides", [(), ("model.optimizer.lr=0.01,0.1",), ("model=mlp",)])
def test_a_hit_gives_what_validating_gives_without_composing(project, cache, monkeypatch, overrides):
    fresh = load_project(project, overrides)
    assert facts(load_project(project, overrides, cache=cache)) == facts(fresh)  # cold: stores
    refuse_to_compose(monkeypatch)
    assert facts(load_project(project, overrides, cache=cache)) == facts(fresh)  # warm: reads


def test_editing_a_config_group_file_is_a_miss(project, cache):
    load_project(project, cache=cache)
    edit(project / "model" / "logistic.yaml", "epochs: 30", "epochs: 31")
    (item,) = load_project(project, cache=cache)
    assert item.spec.model.training.epochs == 31


def test_a_file_looked_for_and_absent_then_created_is_a_miss(project, cache):
    edit(project / "pipeline.yaml", "  - _self_\n", "  - optional extra: more\n  - _self_\n")
    (before,) = load_project(project, cache=cache)
    (project / "extra").mkdir()
    (project / "extra" / "more.yaml").write_text("# @package _global_\nmonitors:\n  daily:\n"
                                                 "    source: {path: data/daily.parquet}\n")
    (after,) = load_project(project, cache=cache)
    assert sorted(before.spec.monitors) == ["weekly_drift"]
    assert sorted(after.spec.monitors) == ["daily", "weekly_drift"]


def test_a_file_outside_the_pipeline_folder_is_an_input_too(project, cache):
    shared = project.parent / "shared"
    shared.mkdir()
    shutil.move(project / "model" / "logistic.yaml", shared / "logistic.yaml")
    edit(project / "pipeline.yaml", "- model: logistic", "- model: ../../shared/logistic")
    assert load_project(project, cache=cache)[0].spec.model.training.epochs == 30
    edit(shared / "logistic.yaml", "epochs: 30", "epochs: 32")
    assert load_project(project, cache=cache)[0].spec.model.training.epochs == 32


def test_a_different_loopc_is_a_miss(project, cache, monkeypatch):
    load_project(project, cache=cache)
    monkeypatch.setattr(cache_module, "code_digest", lambda: "another loopc")
    refuse_to_compose(monkeypatch)
    with pytest.raises(AssertionError, match="composed although"):
        load_project(project, cache=cache)


def test_a_damaged_entry_is_a_miss_not_an_error(project, cache):
    fresh = load_project(project)
    load_project(project, cache=cache)
    entries = list(cache.folder.rglob("*.json"))
    assert len(entries) == 2  # the pipeline's specs and its config groups
    for entry in entries:
        entry.write_text('{"inputs": [], "specs": [{"spec": {"loopc": 2}}]}' if "specs" in entry.parts else "[1]")
    assert facts(load_project(project, cache=cache)) == facts(fresh)


def test_errors_are_never_stored(project, cache):
    edit(project / "pipeline.yaml", "no_champion: promote", "no_champion: always")
    for _ in range(2):
        with pytest.raises(SpecErrors, match="gate.no_champion"):
            load_project(project, cache=cache)
    assert list((cache.folder / "specs").rglob("*.json")) == []  # discovery's groups entry may exist


def test_validate_and_plan_take_the_cache_on_request(project, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LOOPC_CACHE_DIR", str(tmp_path / "cli-cache"))

    def stored(kind: str) -> int:
        return len(list((tmp_path / "cli-cache").glob(f"validate-*/{kind}/**/*.json")))

    assert main(["validate", str(project)]) == 0
    assert not (tmp_path / "cli-cache").exists()
    assert main(["validate", str(project), "--cache"]) == 0
    assert (stored("specs"), stored("index")) == (1, 1)
    other = tmp_path / "other"
    shutil.copytree(project, other)
    assert main(["plan", str(other), "--base-dir", str(project)]) == 0
    assert (stored("specs"), stored("index")) == (1, 1)
    assert main(["plan", str(other), "--base-dir", str(project), "--cache"]) == 0
    assert (stored("specs"), stored("index")) == (2, 2)  # the head's specs and the index of its folder
    refuse_to_compose(monkeypatch)
    assert main(["validate", str(project), "--cache"]) == 0
    assert capsys.readouterr().out.endswith("1 spec valid\n")


def test_the_code_digest_covers_everything_validation_may_import():
    from test_layout import COMPILER_ALLOWED

    covered = {entry.partition("/")[2].removesuffix(".py") for entry in cache_module._CODE}
    compiler_units, runtime_units = COMPILER_ALLOWED["spec"]
    assert (compiler_units | runtime_units | {"spec", "api"}) <= covered
    root = Path(cache_module.__file__).resolve().parents[2]
    assert all((root / entry).exists() for entry in cache_module._CODE)


def test_validate_project_counts_hits_without_building_specs(project, cache, monkeypatch):
    overrides = ("model.optimizer.lr=0.01,0.1",)
    assert api.validate_project(project, overrides, cache=cache) == len(load_project(project, overrides)) == 2
    refuse_to_compose(monkeypatch)
    monkeypatch.setattr(cache_module, "_from_json", lambda *args: (_ for _ in ()).throw(AssertionError("built")))
    assert api.validate_project(project, overrides, cache=cache) == 2


def test_validate_project_reports_a_name_used_twice_as_load_project_does(project, cache):
    shutil.copytree(project, project / "copy")
    with pytest.raises(SpecErrors) as fresh:
        load_project(project)
    for _ in range(2):  # cold, then every file a hit
        with pytest.raises(SpecErrors) as cached:
            api.validate_project(project, cache=cache)
        assert cached.value.errors == fresh.value.errors and fresh.value.errors[0].code == "LPC504"


def test_unchanged_files_are_not_read_again(project, cache, monkeypatch):
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)  # trust records of files written just now
    fresh = load_project(project)
    load_project(project, cache=cache)
    refuse_to_compose(monkeypatch)
    monkeypatch.setattr(cache_module, "input_digest", lambda path: (_ for _ in ()).throw(AssertionError(path)))
    monkeypatch.setattr(api, "_looks_like_spec", lambda file: (_ for _ in ()).throw(AssertionError(file)))
    assert facts(load_project(project, cache=cache)) == facts(fresh)


def test_an_edit_that_keeps_size_and_mtime_is_still_seen(project, cache, monkeypatch):
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)
    load_project(project, cache=cache)
    model = project / "model" / "logistic.yaml"
    before = model.stat()
    edit(model, "epochs: 30", "epochs: 31")
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (model.stat().st_size, model.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert load_project(project, cache=cache)[0].spec.model.training.epochs == 31  # the ctime moved


def test_a_file_changed_within_two_seconds_of_its_record_is_hashed_again(project, cache, monkeypatch):
    load_project(project, cache=cache)  # every file was written just now: no record is trusted
    hashed = []
    monkeypatch.setattr(cache_module, "input_digest", lambda path: hashed.append(path) or "x")
    load_project(project, cache=cache)
    assert str(project / "pipeline.yaml") in hashed


def test_a_warm_run_with_nothing_changed_writes_nothing(project, cache, monkeypatch):
    monkeypatch.setattr(cache_module, "_RACY_NS", 0)  # trust records and listings of files written just now
    assert api.validate_project(project, cache=cache) == 1
    monkeypatch.setattr(cache_module, "_atomic_write", lambda *args: (_ for _ in ()).throw(AssertionError("written")))
    assert api.validate_project(project, cache=cache) == 1  # neither the index nor an entry is written again


def test_a_damaged_index_is_a_miss_not_an_error(project, cache):
    fresh = load_project(project)
    load_project(project, cache=cache)
    (index,) = cache.folder.glob("index/*.json")
    for damage in (b"", b"[1]", b'{"code": 1}', b'{"code": "x", "files": {}, "entries": {}}', b"\xff"):
        index.write_bytes(damage)
        assert facts(load_project(project, cache=cache)) == facts(fresh)
        assert api.validate_project(project, cache=cache) == 1


IMPORTS_AFTER_VALIDATE = """
import sys
from loopc.compiler.cli.main import main
code = main(["validate", sys.argv[1], "--cache"])
print(code, *sorted(m for m in ("pydantic", "yaml", "loopc.compiler.cli.plan", "rich") if m in sys.modules))
"""


def test_a_warm_validate_imports_neither_pydantic_nor_the_other_commands(project, tmp_path):
    import subprocess
    import sys

    env = {**os.environ, "LOOPC_CACHE_DIR": str(tmp_path / "cli-cache")}
    run = [sys.executable, "-c", IMPORTS_AFTER_VALIDATE, str(project)]
    cold = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
    warm = subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.splitlines()[-1].split()
    assert cold[0] == "0" and "pydantic" in cold and "loopc.compiler.cli.plan" not in cold
    assert warm == ["0"]  # served by the index: no front end, no pydantic, no other command
