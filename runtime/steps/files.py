"""Reading and writing a step's own files (JSON in, any file out with a clear error): no NumPy, no Arrow."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loopc.runtime.execution.runner import StepFailed


@contextlib.contextmanager
def writing(path: Path) -> Iterator[Path]:
    """Turn an OSError while writing ``path`` (a full disk, no permission) into StepFailed naming it."""
    try:
        yield path
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        raise StepFailed(f"cannot write '{path}': {reason}; free space or fix permissions there and run again") from None


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))
