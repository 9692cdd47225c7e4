"""Python's cyclic garbage collector tuned for a long run: start-up frozen, young collections rarer.

With 600 turns in flight the collector was ~15 % of the bridge's CPU (BENCHMARKS.md, "Engage
client CPU per turn"). A turn allocates thousands of container objects (httpx, aiohttp,
redis-py, pydantic, Bolt); the default young threshold (700 allocations) collects every few of
them and promotes whatever lives across a turn's awaits, and each promoted batch brings a full
collection nearer, which rescans the ~110k objects start-up built (60-170 ms each on the
benchmark machine, the event loop stalled meanwhile). Freezing what start-up built takes it out
of every later collection (`gc.freeze`); a higher young threshold lets most of a turn's objects
die before a collection sees them.
"""

from __future__ import annotations

import gc

# Python's own young-generation threshold, for comparison: 700.
DEFAULT_YOUNG_THRESHOLD = 20_000


def settle(young_threshold: int) -> None:
    """Once start-up is done: collect, freeze what is left, and collect the young generation
    every `young_threshold` allocations. 0 leaves the collector as Python set it."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
