"""Where a step's state lives: the compiled store and registry URLs, unless the environment names others."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from loopc.runtime.execution.step import StepDoc
from loopc.runtime.registry.connect import REGISTRY_ENV
from loopc.runtime.store.artifacts import STORE_ENV


def apply_compiled_locations(doc: StepDoc) -> None:
    """Make the step document's ``store``/``registry`` this process's defaults (a process that runs one step)."""
    for name, value in ((STORE_ENV, doc.store), (REGISTRY_ENV, doc.registry)):
        if value and not os.environ.get(name):
            os.environ[name] = value


@contextlib.contextmanager
def compiled_locations(doc: StepDoc) -> Iterator[None]:
    """While the block runs, the step document's ``store``/``registry`` are ``$LOOPC_STORE``/``$LOOPC_REGISTRY``
    unless those are set already (the environment where the job runs wins); afterwards both are as before,
    so the next step in this process (another plan's) starts from the same environment."""
    before = {name: os.environ.get(name) for name in (STORE_ENV, REGISTRY_ENV)}
    try:
        apply_compiled_locations(doc)
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
