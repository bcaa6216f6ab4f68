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
