"""Incompressible record values, generated once per size.

Every value in a pool is a distinct slice of one random block, and the pool (4 MiB) is far wider
than lz4's 64 KiB window and the 1 MiB batch, so lz4 finds nothing to squeeze: the compressed
runs measure the codec path, not a lucky ratio.
"""

from __future__ import annotations

import os
from functools import cache

POOL_BYTES = 4 << 20


@cache
def pool(size: int) -> tuple[bytes, ...]:
    """Distinct random values of `size` bytes, to be cycled through."""
    block = os.urandom(POOL_BYTES + size)
    return tuple(block[i : i + size] for i in range(0, POOL_BYTES, size))
