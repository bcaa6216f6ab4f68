"""Which project a state folder belongs to: ``<state>/project.json`` names its project root.

Two projects whose ``state_dir`` points at one folder would silently share a registry, run ids and
monitor cooldowns; the first project to use a state folder claims it and any other is refused. The
root is recorded relative to the state folder, so a project that moves (or is mounted elsewhere)
together with its state, as the default ``.loopc`` inside the project always does, stays the same.
"""

from __future__ import annotations

import os
from pathlib import Path

from loopc.runtime.execution.runs import create_once
from loopc.runtime.execution.step import StepError

PROJECT_FILE = "project.json"


class StateConflict(StepError):
    """The state folder belongs to another project."""


def project_of(state: Path, root: Path) -> str:
    """How ``state`` reaches the project ``root``: a relative POSIX path (``..`` for ``ROOT/.loopc``)."""
    return Path(os.path.relpath(Path(root).resolve(), Path(state).resolve())).as_posix()


def claim_state(state: Path, root: Path) -> None:
    """Claim ``state`` for the project at ``root`` when unclaimed; StateConflict when another project owns it."""
    path = Path(state) / PROJECT_FILE
    mine = project_of(state, root)
    try:
        claimed = create_once(path, {"format": 1, "root": mine})
    except (OSError, ValueError) as exc:
        raise StateConflict(f"{path}: cannot read which project owns this state folder ({exc}); "
                            "delete the file if this folder belongs to the project at "
                            f"{Path(root).resolve()}") from None
    if claimed.get("root") != mine:
        owner = (Path(state).resolve() / str(claimed.get("root"))).resolve()
        raise StateConflict(
            f"state folder {Path(state).resolve()} belongs to the project at {owner}, not to "
            f"{Path(root).resolve()}: two projects sharing one state folder would mix their registries "
            "and runs. Give this project its own pipeline.state_dir; if the project moved away from "
            f"its state, delete {path} to let it claim the folder again"
        )
