"""Multi-process JAX: join the job (Slurm or explicit coordinator), shard rows, move arrays across.

Every process holds the rows ``row_range(rows, index, count)`` of the training matrix and the
whole (small) label vector; a global batch is the rows of every process that fall in it, padded
to one fixed capacity per epoch so all processes run the same shapes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from loopc.runtime.train.errors import TrainError


def spans_processes(environ: Mapping[str, str]) -> bool:
    """True when this process is one of several: an srun step of several tasks, or a coordinator is set.

    Slurm's batch shell has ``SLURM_NTASKS`` of the whole job but no ``SLURM_STEP_NUM_TASKS``: a step
    run there without srun is one process.
    """
    if environ.get("LOOPC_COORDINATOR"):
        return True
    try:
        return int(environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1
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
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU devices need it across processes
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


def row_range(rows: int, index: int, count: int) -> tuple[int, int]:
    """The contiguous rows ``[lo, hi)`` process ``index`` of ``count`` reads."""
    return rows * index // count, rows * (index + 1) // count


def global_mesh() -> Mesh:
    """A 1-D mesh ``data`` over every device of every process."""
    return Mesh(np.array(jax.devices()), ("data",))


def to_global(tree, mesh: Mesh):
    """Host arrays (equal on every process) as replicated global arrays."""
    sharding = NamedSharding(mesh, PartitionSpec())

    def put(leaf):
        value = np.asarray(leaf)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree_util.tree_map(put, tree)


def to_host(tree):
    """Numpy copies of (replicated) arrays, from this process's first shard of each."""
    def get(leaf):
        if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
            leaf = leaf.addressable_data(0)
        return np.array(leaf, copy=True)

    return jax.tree_util.tree_map(get, tree)


def sharded(mesh: Mesh, local: np.ndarray) -> jax.Array:
    """This process's part of a global array whose first axis is split over the mesh."""
    return jax.make_array_from_process_local_data(NamedSharding(mesh, PartitionSpec("data")), local)


def batch_capacity(order: np.ndarray, mask: np.ndarray, bounds: np.ndarray, multiple: int) -> int:
    """Most rows any process contributes to any batch of the epoch, rounded up to ``multiple``."""
    owner = np.searchsorted(bounds[1:], order, side="right")
    owner = np.where(mask > 0, owner, len(bounds) - 1)  # padding counts for nobody
    per_batch = np.stack([np.bincount(row, minlength=len(bounds))[:-1] for row in owner])
    return max(multiple, -(-int(per_batch.max()) // multiple) * multiple)


def local_batch(x, y, w, ids: np.ndarray, lo: int, hi: int, capacity: int) -> tuple:
    """This process's rows of one global batch (global row ``ids``) from its shard, padded with weight 0."""
    local = ids[(ids >= lo) & (ids < hi)] - lo
    xb = np.zeros((capacity, x.shape[1]), x.dtype)
    yb, wb = np.zeros(capacity, y.dtype), np.zeros(capacity, np.float32)
    xb[: len(local)], yb[: len(local)], wb[: len(local)] = x[local], y[local], w[local]
    return xb, yb, wb
