"""The usual report rate of a service: one definition, quoted by /report, /status, the chart and
the dashboard (issue #20), and a per-process cache of it for /report."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import crowd
from bot.store import crowd_store
from bot.store.crowd_baseline import learned_memory, usual_per_hour_at

HOUR = timedelta(hours=1)
BASELINE = timedelta(days=7)
MIN_BASELINE = 10
"""Fewer counted reports than this over the baseline week say nothing about what is usual."""
USUAL_EVERY = timedelta(minutes=10)


def baseline_span(now: datetime) -> tuple[datetime, datetime]:
    """The week whose counted reports say whether there is enough data to name a usual level.

    The current hour is left out, so a surge does not raise its own baseline."""
    return now - BASELINE, now - HOUR


def usual_rate(week_count: int, memory: crowd.CrowdMemory | None, now: datetime) -> float | None:
    """Counted reports per hour users usually send now; None while there are too few to say.

    The crowd detector's learned baseline when it has one (it knows that nights are quieter than
    afternoons, and it is what early warnings compare with); before it has learned, the plain
    mean of the baseline week."""
    if week_count < MIN_BASELINE:
        return None
    if memory is not None:
        return usual_per_hour_at(memory, now)
    start, end = baseline_span(now)
    return week_count / ((end - start) / HOUR)


async def usual_per_hour(session: AsyncSession, service_id: str, now: datetime) -> float | None:
    """`usual_rate` of one service, from the store."""
    since, until = baseline_span(now)
    week = await crowd_store.counted_between(
        session=session, service_id=service_id, since=since, until=until
    )
    return usual_rate(week, await learned_memory(session=session, service_id=service_id), now)


class UsualLevels:
    """`usual_per_hour` per service, recounted every `every`: it moves slowly, and /report asks
    on every report."""

    def __init__(self, every: timedelta = USUAL_EVERY) -> None:
        self._every = every
        self._known: dict[str, tuple[datetime, float | None]] = {}

    async def per_hour(self, session: AsyncSession, service_id: str, now: datetime) -> float | None:
        """The service's usual rate, from the cache while it is fresh."""
        cached = self._known.get(service_id)
        if cached is not None and timedelta(0) <= now - cached[0] < self._every:
            return cached[1]
        usual = await usual_per_hour(session, service_id, now)
        self._known[service_id] = (now, usual)
        return usual
