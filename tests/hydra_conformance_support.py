"""Drive loopc's composer and Hydra's compose API over one config tree; say whether they agree."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopc.compiler.errors import SpecErrors
from loopc.compiler.frontend.compose import compose_spec


@dataclass
class Outcome:
    """What one composer made of a case: a tree, or the error it raised."""

    tree: Any = None
    error: str | None = None
    codes: tuple[str, ...] = ()
    located: bool = True


def hydra_compose(config_dir: Path, overrides: list[str]) -> Outcome:
    """Hydra's own composition of ``config_dir/pipeline.yaml`` (resolved), or its error."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
                cfg = compose(config_name="pipeline", overrides=overrides)
                return Outcome(tree=OmegaConf.to_container(cfg, resolve=True))
    except Exception as exc:  # noqa: BLE001 - any Hydra failure is an outcome to compare
        return Outcome(error=f"{type(exc).__name__}: {exc}")


def loopc_compose(config_dir: Path, overrides: list[str]) -> list[tuple[list[str], Outcome]]:
    """loopc's composition: one (single overrides, outcome) per sweep point, or one error outcome."""
    try:
        points = compose_spec(config_dir / "pipeline.yaml", overrides)
    except SpecErrors as exc:
        located = all(e.file and e.line >= 1 and e.column >= 1 and e.code for e in exc.errors)
        outcome = Outcome(error="; ".join(str(e.message) for e in exc.errors),
                          codes=tuple(e.code for e in exc.errors), located=located)
        return [(overrides, outcome)]
    return [(list(p.overrides), Outcome(tree=p.tree)) for p in points]


def same(left: Any, right: Any) -> bool:
    """Equal trees, with NaN equal to NaN and 1 not equal to True (types compared too)."""
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return list(left) == list(right) and all(same(left[k], right[k]) for k in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right))
    return left == right


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
