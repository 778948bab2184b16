"""The heap a process builds while it starts, set aside from garbage collection.

Python's cycle collector walks every tracked object it owns on each full collection. After
start-up that is mostly what will live as long as the process (modules, the ORM's mappings,
adapters, compiled statements), hundreds of thousands of objects; a delivery worker made one
full collection of about 70 ms in the middle of a 5,000-channel fan-out (`bench/scale.py`,
2026-12-07). `gc.freeze` moves them to a generation the collector never walks: they are not
freed (they were not going to be), and collections look only at what the running bot allocates.
"""

from __future__ import annotations

import gc


def settle_startup_heap() -> None:
    """Collect start-up's garbage once, then freeze what survived; call once, when started."""
    gc.collect()
    gc.freeze()
