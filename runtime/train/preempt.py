"""Stop training cleanly on SIGTERM or SIGUSR1 (Slurm's preemption and time-limit warnings)."""

from __future__ import annotations

import signal
import threading

from loopc.runtime.train.errors import TrainError

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(TrainError):
    """Training stopped on a signal after saving a checkpoint; a retry resumes from it."""


class StopSignals:
    """While active, SIGTERM/SIGUSR1 only record their name in ``received`` (main thread only)."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
