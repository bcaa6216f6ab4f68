"""Test hook: kill this process with SIGKILL at a named point of a registry transaction or a store upload.

``LOOPC_TEST_KILL_AT=promote.after_archive`` (or ``store.after_upload``) makes the process die exactly
there, so tests can kill a writer between any two statements deterministically. Unset (always, outside tests), it
does nothing.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "LOOPC_TEST_KILL_AT"


def point(name: str) -> None:
    """Die here when ``$LOOPC_TEST_KILL_AT`` names this point."""
    if os.environ.get(KILL_AT) == name:
        os.kill(os.getpid(), signal.SIGKILL)
