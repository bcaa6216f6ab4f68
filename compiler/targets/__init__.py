"""Targets: turn plans into files for one scheduler. One folder per target, one registry line each.

Owns the Backend protocol, EmitOptions, the target registry (``backends()``), the shared Jinja
environment (``jinja``) and the files every target writes alike (``common``). Imports only
``loopc.compiler.plan``, ``loopc.compiler.errors`` and the spec's grammars (``spec.cron``: what a
scheduler file may hold); never the front end or the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loopc.compiler.plan.pipeline import Plan


@dataclass(frozen=True)
class EmitOptions:
    """Compile options every backend understands.

    ``python``: interpreter the emitted jobs call (workers need only loopc installed).
    ``root``: project directory at run time (data and state are relative to it); None means
    the job's ``$LOOPC_ROOT``, else its working directory.
    """

    python: str = "python3"
    root: str | None = None


class Backend(Protocol):
    """A compile target."""

    name: str

    def check(self, plans: list[Plan], options: EmitOptions) -> list[str]:
        """Problems that stop this target from running these plans (empty: fine)."""

    def render(self, plans: list[Plan], options: EmitOptions) -> dict[str, str]:
        """Relative path -> file text; byte-identical for the same input."""


def backends() -> dict[str, Backend]:
    """Name -> backend, in a fixed order. Imported on first use: ``loopc validate`` needs none of them."""
    from loopc.compiler.targets.airflow import backend as airflow
    from loopc.compiler.targets.local import backend as local
    from loopc.compiler.targets.slurm import backend as slurm

    return {"local": local.BACKEND, "airflow": airflow.BACKEND, "slurm": slurm.BACKEND}
