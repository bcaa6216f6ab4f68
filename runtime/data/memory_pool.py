"""Which allocator Arrow takes its buffers from in a step process (imports Arrow only to switch the pool).

The data steps take and free batch-sized buffers over and over. jemalloc keeps freed pages for the
next batch; pyarrow's default, mimalloc, hands them back and takes fresh ones (a page fault each, about
8 us here). Measured on validate at 4,000,000 rows x 64: about 172,000 page faults and 3.44 CPU s with
jemalloc as pyarrow's pool alone (the decoder still in mimalloc), 125,000 and 3.31 CPU s with Arrow's
default pool jemalloc too. With the C library's malloc the split step's peak grew 1.8x from 1M to 8M
rows (fragmentation), with jemalloc 1.2x.
"""

from __future__ import annotations

import os
import sys

POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def prefer_jemalloc() -> None:
    """Before Arrow loads: name jemalloc in ``$ARROW_DEFAULT_MEMORY_POOL`` unless the user named a pool.

    Only the variable reaches Arrow's own default pool, which Parquet's decoder allocates from whatever
    ``pyarrow.set_memory_pool`` says. On Linux only, where pyarrow's builds include jemalloc (Arrow warns
    about a pool it lacks); elsewhere, and once Arrow is loaded, ``choose_memory_pool`` is what there is.
    """
    if sys.platform.startswith("linux") and "pyarrow" not in sys.modules:
        os.environ.setdefault(POOL_ENV, "jemalloc")


def choose_memory_pool() -> None:
    """pyarrow's pool: jemalloc (the C library's malloc where pyarrow lacks it) unless ``$ARROW_DEFAULT_MEMORY_POOL``
    names one (``prefer_jemalloc`` names it in a step process)."""
    if os.environ.get(POOL_ENV):
        return
    import pyarrow as pa

    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    except NotImplementedError:  # a pyarrow built without jemalloc
        pa.set_memory_pool(pa.system_memory_pool())
