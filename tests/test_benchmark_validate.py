"""benchmarks/validate.py changes, for its re-validate figures, a file the pipeline reads (so it is composed again)."""

from __future__ import annotations

from benchmark_support import load_benchmark

from loopc.compiler.api import load_project, validate_project
from loopc.compiler.spec.cache import ValidateCache


def benchmark():
    return load_benchmark("validate")


def test_the_changed_model_file_is_one_the_pipeline_reads(tmp_path):
    bench = benchmark()
    root = tmp_path / "repo"
    bench.build_repository(root, 4)
    chosen = bench.read_model_files(root)
    loaded = {item.file.parent: item for item in load_project(root)}
    assert len(chosen) == len(loaded) == 4
    for model in chosen:
        inputs = loaded[model.parent.parent].inputs
        others = [str(m) for m in model.parent.glob("*.yaml") if m != model]
        assert str(model) in inputs and others and not set(others) & set(inputs)
    cache = ValidateCache(tmp_path / "cache")
    validate_project(root, cache=cache)
    model = chosen[1]
    model.write_text(model.read_text() + "description: changed for the benchmark\n")
    built = []
    assert validate_project(root, cache=cache, built=built) == 4
    assert [item.file.parent for item in built] == [model.parent.parent]  # composed and validated again
