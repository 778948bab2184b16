"""Per-service facts quoted by several features: whether our own API check fails, and how long
similar incidents lasted. Each is defined once, here (issue #20); the usual report rate is in
`bot.services.usual_levels`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.faq_facts import DurationEstimate, estimate_duration, similar_durations
from bot.core.status import SourceKind
from bot.sources.catalog import ServiceDef
from bot.store import detection_store

ESTIMATE_HISTORY = timedelta(days=365)


def probe_urls(service: ServiceDef) -> list[str]:
    """The service's own API checks (synthetic probes), by source URL."""
    return [source.url for source in service.sources if source.kind == SourceKind.PROBE]


async def probe_failing(session: AsyncSession, service_id: str, urls: list[str]) -> bool:
    """Whether any of the service's API checks currently counts as down (after its hysteresis)."""
    for url in urls:
        memory = await detection_store.load_memory(
            session=session, service_id=service_id, source_url=url
        )
        if memory.probe_down:
            return True
    return False


@dataclass(frozen=True, slots=True)
class DurationFact:
    """How long similar past incidents lasted: how many there were, and their spread if enough."""

    similar: int
    estimate: DurationEstimate | None


async def duration_estimate(
    session: AsyncSession, *, service_id: str, impact: str, started_at: datetime
) -> DurationFact:
    """Resolved incidents of the same impact in the year before this one started.

    Anchored at the incident's start, not at the moment of asking, so /faq and the alert
    message give the same estimate for the same incident however late they are asked."""
    history = await detection_store.incident_history(
        session=session, service_id=service_id, since=started_at - ESTIMATE_HISTORY
    )
    durations = similar_durations(history, impact=impact, exclude_started_at=started_at)
    return DurationFact(similar=len(durations), estimate=estimate_duration(durations))
