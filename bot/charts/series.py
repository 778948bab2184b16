"""A service's 24 h report series: counted reports per bucket, the usual level, the incidents.

The store counts (`bot.store.report_series`); the usual level per bucket is the crowd detector's
learned baseline (`bot.store.crowd_baseline`, the one the dashboard and /report quote), or, for a
service the detector has not seen yet, the stored week before the span, learned the way the
detector would.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.model import IncidentWindow, ReportSeries
from bot.core import crowd
from bot.store.crowd_baseline import learned_memory, usual_per_hour_at
from bot.store.report_series import EPOCH, bucket_counts, incident_spans

SPAN = timedelta(hours=24)
BUCKET = timedelta(minutes=15)
LEARN_FROM = timedelta(days=7)
HOUR = timedelta(hours=1)


async def load_report_series(
    *,
    session: AsyncSession,
    service_id: str,
    now: datetime,
    span: timedelta = SPAN,
    bucket: timedelta = BUCKET,
    config: crowd.CrowdConfig | None = None,
) -> ReportSeries:
    """Counted reports per bucket over the ``span`` ending at ``now``, with usual and incidents.

    Buckets lie on a grid of whole ``bucket``s since the Unix epoch (15 min: :00, :15, …), so a
    chart drawn a minute later has the same bars; the last bucket ends at ``now``, part-filled.
    """
    if bucket <= timedelta(0) or span < bucket or HOUR % bucket:
        raise ValueError("the bucket must divide an hour and fit in the span")
    end = _aware(now)
    last = _floor(end, bucket)
    buckets = math.ceil(span / bucket)
    start = last - (buckets - 1) * bucket
    detector = config or crowd.CrowdConfig()
    memory = await learned_memory(session=session, service_id=service_id)
    origin = start if memory is not None else start - LEARN_FROM
    counted = await bucket_counts(
        session=session, service_id=service_id, origin=origin, until=end, bucket=bucket
    )
    offset = round((start - origin) / bucket)
    counts = tuple(counted.get(offset + i, 0) for i in range(buckets))
    if memory is None:
        memory = crowd.learn_history(
            crowd.CrowdMemory(), _hours(counted, origin, start, bucket), config=detector
        )
    per_bucket = bucket / HOUR
    usual = tuple(
        usual_per_hour_at(memory, start + (i + 0.5) * bucket, config=detector) * per_bucket
        for i in range(buckets)
    )
    return ReportSeries(
        service_id=service_id,
        start=start,
        end=end,
        bucket=bucket,
        counts=counts,
        usual=usual,
        incidents=tuple(
            IncidentWindow(span.started_at, span.resolved_at, span.impact)
            for span in await incident_spans(
                session=session, service_id=service_id, since=start, until=end
            )
        ),
    )


def _hours(
    counted: dict[int, int], origin: datetime, start: datetime, bucket: timedelta
) -> list[tuple[datetime, int]]:
    """Whole hours of bucket counts in [origin, start), oldest first, empty hours included."""
    per_hour = round(HOUR / bucket)
    first = _floor(origin + HOUR - bucket, HOUR)  # the first hour that begins inside the range
    hours = []
    hour = first
    while hour + HOUR <= start:
        base = round((hour - origin) / bucket)
        hours.append((hour, sum(counted.get(base + k, 0) for k in range(per_hour))))
        hour += HOUR
    return hours


def _floor(moment: datetime, step: timedelta) -> datetime:
    return EPOCH + ((moment - EPOCH) // step) * step


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
