"""The cyclic garbage collector's setting for the front end, in a module of its own so
that ``nnc check`` can apply it before it imports the front end."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the front end with the cyclic garbage collector's first generation 100,000
    allocations long instead of 700: checking a spec allocates hundreds of thousands
    of objects and frees almost none, so the collector's passes (over every object
    alive) made checking grow faster than the text (1M characters: 40% of the time).
    See ``benchmarks/check_long_lines.py``."""
    previous = gc.get_threshold()
    gc.set_threshold(max(previous[0], 100_000), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
