"""Where a step's state lives: the compiled store and registry URLs, unless the environment names others."""

from __future__ import annotations

import os

from loopc.runtime.execution.step import StepDoc
from loopc.runtime.registry.connect import REGISTRY_ENV
from loopc.runtime.store.artifacts import STORE_ENV


def apply_compiled_locations(doc: StepDoc) -> None:
    """Make the step document's ``store``/``registry`` the defaults of this process: ``$LOOPC_STORE`` and
    ``$LOOPC_REGISTRY`` set where the job runs win (workers on another cluster, a test database)."""
    for name, value in ((STORE_ENV, doc.store), (REGISTRY_ENV, doc.registry)):
        if value and not os.environ.get(name):
            os.environ[name] = value
