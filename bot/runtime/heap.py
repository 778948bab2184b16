"""The heap a process builds while it starts, set aside from garbage collection.

Python's cycle collector walks every tracked object it owns on each full collection. After
start-up that is mostly what will live as long as the process (modules, the ORM's mappings,
adapters, compiled statements), hundreds of thousands of objects; a delivery worker made one
full collection of about 70 ms in the middle of a 5,000-channel fan-out (`bench/scale.py`,
2026-12-07). `gc.freeze` moves them to a generation the collector never walks: they are not
freed (they were not going to be), and collections look only at what the running bot allocates.

Then young collections come less often. With the default threshold (700 net allocations) the
objects a few dozen polls or deliveries hold while they wait on the network are caught in flight
again and again, promoted, and soon trigger a full collection of everything not frozen: about
100 ms per round of 3,000 pages, a tenth of the CPU of polling them (bench/poll_efficiency.py,
2026-12-07). At 10,000 a round of 3,000 pages runs no collection at all; the young generation
it lets build up is a few MB at most.
"""

from __future__ import annotations

import gc

YOUNG_COLLECTION_THRESHOLD = 10_000
"""Net allocations of tracked objects between young collections (Python's default: 700)."""


def settle_startup_heap() -> None:
    """Collect start-up's garbage once, freeze what survived, and collect the young generation
    less often from now on; call once, when started."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, older, oldest)
