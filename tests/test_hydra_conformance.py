"""loopc composes exactly as Hydra's compose API (hydra-core 1.3), or refuses a form it does not support.

Cases are data (tests/hydra_cases/*.yaml): a config tree, overrides, and what Hydra does with them. Each case
must give the same tree in both (every sweep point compared with Hydra given that point's overrides), or an
error in both, or a located loopc refusal with the code the case names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.hydra_conformance_support import hydra_compose, loopc_compose, same, write_tree

CASES_DIR = Path(__file__).parent / "hydra_cases"
EXAMPLES = Path(__file__).resolve().parents[1] / "specs" / "examples"


def _cases() -> list:
    params = []
    for file in sorted(CASES_DIR.glob("*.yaml")):
        for case in yaml.safe_load(file.read_text()):
            params.append(pytest.param(case, id=f"{file.stem}:{case['name']}"))
    return params


CASES = _cases()


def check_case(root: Path, overrides: list[str], refused: str | None, hydra_fails: bool) -> None:
    """Assert loopc agrees with Hydra on ``root`` (or refuses with ``refused``, located)."""
    for singles, ours in loopc_compose(root, overrides):
        if refused is not None:
            assert refused in ours.codes, f"expected a {refused} refusal, loopc gave {ours.tree or ours.error}"
            assert ours.located
            continue
        theirs = hydra_compose(root, singles)
        assert (theirs.error is not None) == hydra_fails, f"the case says Hydra fails={hydra_fails}: {theirs}"
        if theirs.error is not None:
            assert ours.error is not None, f"Hydra: {theirs.error}\nloopc composed {ours.tree}"
            assert ours.located and ours.codes
        else:
            assert ours.error is None, f"loopc: {ours.codes} {ours.error}\nHydra composed {theirs.tree}"
            assert same(ours.tree, theirs.tree), f"loopc {ours.tree}\nHydra {theirs.tree}"


@pytest.mark.parametrize("case", CASES)
def test_case_agrees_with_hydra(case: dict, tmp_path: Path) -> None:
    write_tree(tmp_path, case["files"])
    check_case(tmp_path, case.get("overrides", []), case.get("refused"), case.get("hydra_fails", False))


def test_there_are_many_cases_of_every_kind() -> None:
    kinds = {Path(p.id.split(":")[0]).name for p in CASES}
    assert len(CASES) >= 60 and {"defaults", "packages", "grammar", "keys", "refused"} <= kinds


def _generated_overrides(tree: dict, groups: dict[str, list[str]]) -> list[list[str]]:
    """Overrides of every kind for an example: each leaf changed to values of several grammar forms, deleted,
    forced; each group switched to each of its options; new keys added."""
    values = ["7", "-2.5", "1e-3", "inf", "nan", "true", "yes", "null", "'a,b'", "x\\,y", "0x10", "[1,2]",
              "{k: 1}", "text", "${pipeline.name}"]
    cases, leaves = [], list(_leaves(tree))
    for number, (path, _) in enumerate(leaves[::2]):
        prefix = ("", "++", "~")[number % 3]
        value = "" if prefix == "~" else f"={values[number % len(values)]}"
        cases.append([f"{prefix}{path}{value}"])
    for group, options in groups.items():
        cases += [[f"{group}={option}"] for option in options]
        cases.append([f"~{group}"])
    cases.append(["+pipeline.extra={a: [1, {b: null}]}", "++pipeline.extra.a.0=2"])
    return cases


def _leaves(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            yield from _leaves(value, f"{path}.")
        elif key != "defaults":
            yield path, value


def _example_params() -> list:
    params = []
    for example in sorted(p for p in EXAMPLES.iterdir() if (p / "pipeline.yaml").is_file()):
        tree = yaml.safe_load((example / "pipeline.yaml").read_text())
        groups = {g.name: sorted(o.stem for o in g.glob("*.yaml")) for g in sorted(example.iterdir()) if g.is_dir()}
        groups = {g: o for g, o in groups.items() if o and any(g in d for d in tree.get("defaults", []) if isinstance(d, dict))}
        for overrides in _generated_overrides(_composed(example), groups):
            params.append(pytest.param(example, overrides, id=f"{example.name}:{' '.join(overrides)}"))
    return params


def _composed(example: Path) -> dict:
    from loopc.compiler.frontend.compose import compose_spec

    return compose_spec(example / "pipeline.yaml")[0].tree


@pytest.mark.parametrize(("example", "overrides"), _example_params())
def test_examples_with_generated_overrides_agree_with_hydra(example: Path, overrides: list[str]) -> None:
    for singles, ours in loopc_compose(example, overrides):
        theirs = hydra_compose(example, singles)
        if theirs.error is not None:
            assert ours.error is not None and ours.located and ours.codes, f"Hydra: {theirs.error}\nloopc {ours.tree}"
        else:
            assert ours.error is None, f"loopc: {ours.codes} {ours.error}"
            assert same(ours.tree, theirs.tree)


def _replace_not_merge(dst, positions, src, src_pos, at=(), src_path=()):
    """Mutant merge rule: a mapping replaces a mapping instead of merging into it."""
    for key, value in src.items():
        dst[key] = value


def _self_first(entries):
    """Mutant defaults rule: without '_self_' the file's own content goes first instead of last."""
    from loopc.compiler.frontend.defaults import DefaultEntry

    return entries if any(e.is_self for e in entries) else [DefaultEntry.self_entry(), *entries]


@pytest.mark.parametrize(("attribute", "mutant"), [("merge_located", _replace_not_merge), ("_with_self", _self_first)])
def test_a_changed_composition_rule_fails_the_suite(attribute: str, mutant, monkeypatch, tmp_path: Path) -> None:
    from loopc.compiler.frontend import compose

    monkeypatch.setattr(compose, attribute, mutant)
    for number, param in enumerate(CASES):
        case = param.values[0]
        write_tree(tmp_path / str(number), case["files"])
        try:
            check_case(tmp_path / str(number), case.get("overrides", []), case.get("refused"),
                       case.get("hydra_fails", False))
        except AssertionError:
            return  # the suite caught the mutant
    pytest.fail(f"no case notices the mutant {attribute}")


def test_composing_without_overrides_loads_no_hydra() -> None:
    import subprocess
    import sys

    code = ("import sys; from loopc.compiler.frontend.compose import compose_spec; "
            f"compose_spec({str(EXAMPLES / 'churn' / 'pipeline.yaml')!r}); "
            "print(sorted(m for m in ('hydra', 'antlr4', 'omegaconf') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
