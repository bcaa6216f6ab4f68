"""Join a multi-process JAX job (Slurm or explicit coordinator) before any computation; no-op otherwise."""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax

from loopc.runtime.train.nets import TrainError


def spans_processes(environ: Mapping[str, str]) -> bool:
    """True when the environment says the job has several processes (Slurm tasks or a coordinator)."""
    if environ.get("LOOPC_COORDINATOR"):
        return True
    try:
        return int(environ.get("SLURM_NTASKS", "1")) > 1
    except ValueError:
        return False


def maybe_initialize_distributed(environ: Mapping[str, str] | None = None) -> bool:
    """Call ``jax.distributed.initialize()`` when the job spans several processes; return whether it did.

    With ``LOOPC_COORDINATOR`` (``host:port``) also set ``LOOPC_NUM_PROCESSES`` and ``LOOPC_PROCESS_ID``;
    under Slurm JAX reads the cluster from the SLURM_* variables itself.
    """
    environ = os.environ if environ is None else environ
    if not spans_processes(environ):
        return False
    coordinator = environ.get("LOOPC_COORDINATOR")
    if coordinator:
        missing = [n for n in ("LOOPC_NUM_PROCESSES", "LOOPC_PROCESS_ID") if not environ.get(n)]
        if missing:
            raise TrainError(f"LOOPC_COORDINATOR is set but {', '.join(missing)} is not; set all three")
        jax.distributed.initialize(
            coordinator_address=coordinator,
            num_processes=int(environ["LOOPC_NUM_PROCESSES"]),
            process_id=int(environ["LOOPC_PROCESS_ID"]),
        )
    else:
        jax.distributed.initialize()
    return True
