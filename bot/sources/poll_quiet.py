"""Whether an unchanged read (a 304) changes nothing worth a database write.

A 304 is the common case: thousands of pages, every 30 s. Detection, run in memory, decides it:
when it finds nothing new for every service of the page, only the "last checked" time moved.
Detection still has to be asked on a 304, because some of its rules depend on time alone (a held
minor incident is announced when its hold runs out, on a page that never changes). But asked
again about the very snapshot it found nothing new in, with the memory it left, it answers the
same until the first such rule is due, which it tells (`outcome_stands_until`). Until then the
verdict stands and the read costs no detection at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter

from bot.core.detection import (
    DetectionConfig,
    ServiceMemory,
    observe_snapshot,
    outcome_stands_until,
)
from bot.core.service_view import service_view
from bot.core.status import Snapshot
from bot.sources.catalog import ServiceDef

MemoryKey = tuple[str, str]
"""(service id, source URL)"""


@dataclass(slots=True)  # not frozen: one per quiet read, and frozen's __init__ costs 3x as much
class _Verdict:
    """Detection found nothing new in `snapshot` and left `memory`; so it stays until then."""

    snapshot: Snapshot
    memory: ServiceMemory  # any other memory (a failure, a push, a full read since) voids it
    stands_until: datetime | None


class QuietReads:
    """Judges unchanged reads per (service, page), rerunning detection only when it may differ."""

    def __init__(self, config: DetectionConfig) -> None:
        self._config = config
        self._verdicts: dict[MemoryKey, _Verdict] = {}

    def __len__(self) -> int:
        return len(self._verdicts)

    def judge(
        self,
        url: str,
        services: Sequence[ServiceDef],
        snapshot: Snapshot,
        memories: Mapping[MemoryKey, ServiceMemory],
        now: datetime,
    ) -> dict[MemoryKey, ServiceMemory] | None:
        """The memories to keep when the unchanged read is quiet for every service of the
        page; None when detection finds something, or knows too little (nothing in memory)."""
        kept: dict[MemoryKey, ServiceMemory] = {}
        verdicts: dict[MemoryKey, _Verdict] = {}
        for service in services:
            key = (service.id, url)
            memory = memories.get(key)
            if memory is None:
                return None
            verdict = self._verdicts.get(key)
            if (
                verdict is not None
                and verdict.snapshot is snapshot
                and verdict.memory is memory
                and (verdict.stands_until is None or now < verdict.stands_until)
            ):
                # What detection would do: note the time it looked, and nothing else.
                after = looked_at(memory, now)
                verdicts[key] = _Verdict(verdict.snapshot, after, verdict.stands_until)
            else:
                view = service_view(snapshot, service.components, (service.name,))
                after, events = observe_snapshot(
                    memory, view, service_id=service.id, now=now, config=self._config
                )
                if events or not _same_but_time(after, memory):
                    return None
                stands_until = outcome_stands_until(after, view, self._config)
                verdicts[key] = _Verdict(snapshot, after, stands_until)
            kept[key] = after
        self._verdicts.update(verdicts)
        return kept

    def forget(self, service_id: str) -> None:
        """Drop the verdicts of a service no longer polled."""
        self._verdicts = {k: v for k, v in self._verdicts.items() if k[0] != service_id}


_MEMORY_BUT_TIME = attrgetter(*(f.name for f in fields(ServiceMemory) if f.name != "last_observed"))


def _same_but_time(after: ServiceMemory, before: ServiceMemory) -> bool:
    """Whether detection remembers the same, apart from when it last looked."""
    return bool(_MEMORY_BUT_TIME(after) == _MEMORY_BUT_TIME(before))


def looked_at(memory: ServiceMemory, now: datetime) -> ServiceMemory:
    """`memory` with only the time it last looked moved to `now`: what observing a view that
    holds nothing new leaves. ``replace(memory, last_observed=now)``, built directly: it costs
    half as much, on the path of every unchanged page (a test holds this list to the fields)."""
    return ServiceMemory(
        now,
        memory.components,
        memory.incidents,
        memory.maintenances,
        memory.source_failures,
        memory.source_stale,
        memory.probe_failures,
        memory.probe_successes,
        memory.probe_down,
    )
