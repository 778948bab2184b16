"""A service's counted reports per time bucket, its usual level and its official incidents.

One GROUP BY over the (service_id, at) index counts the reports; the usual level comes from the
crowd detector's learned baseline (`crowd_memories`), or, for a service the detector has not
seen yet, from the stored week before the span, learned the way the detector would.
"""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.model import IncidentWindow, ReportSeries
from bot.core import crowd
from bot.core.crowd_codec import decode_crowd_memory
from bot.store.crowd_models import CrowdMemoryRow, ReportRow
from bot.store.models import IncidentRow, ServiceIncidentRow

log = logging.getLogger(__name__)

SPAN = timedelta(hours=24)
BUCKET = timedelta(minutes=15)
LEARN_FROM = timedelta(days=7)
HOUR = timedelta(hours=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The chart shows what people usually report, not the detector's floor (which only sets how
# big a crowd must be before it warns): quiet services really do have a usual of about zero.
_UNFLOORED = 1e-9


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
    memory = await _learned_memory(session, service_id)
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
    plain = replace(detector, floor_per_hour=_UNFLOORED)
    per_bucket = bucket / HOUR
    usual = tuple(
        crowd.expected_per_hour(memory, start + (i + 0.5) * bucket, config=plain) * per_bucket
        for i in range(buckets)
    )
    return ReportSeries(
        service_id=service_id,
        start=start,
        end=end,
        bucket=bucket,
        counts=counts,
        usual=usual,
        incidents=await incident_windows(
            session=session, service_id=service_id, since=start, until=end
        ),
    )


async def bucket_counts(
    *, session: AsyncSession, service_id: str, origin: datetime, until: datetime, bucket: timedelta
) -> dict[int, int]:
    """Counted reports in [origin, until) by bucket number (0 = the bucket starting at origin)."""
    size = int(bucket.total_seconds())
    number = ((_epoch_seconds(session) - int((origin - _EPOCH).total_seconds())) // size).label(
        "bucket"
    )
    query = (
        select(number, func.count())
        .where(
            ReportRow.service_id == service_id,
            col(ReportRow.counted).is_(True),
            col(ReportRow.at) >= origin,
            col(ReportRow.at) < until,
        )
        # By the alias: PostgreSQL cannot match a repeated expression whose literals are bound
        # as separate parameters, and both databases accept an output name here.
        .group_by(literal_column("bucket"))
    )
    return {int(index): int(count) for index, count in (await session.exec(query)).all()}


async def incident_windows(
    *, session: AsyncSession, service_id: str, since: datetime, until: datetime
) -> tuple[IncidentWindow, ...]:
    """The service's official incidents open at some moment in [since, until), oldest first."""
    query = (
        select(IncidentRow)
        .join(ServiceIncidentRow, col(ServiceIncidentRow.incident_id) == col(IncidentRow.id))
        .where(ServiceIncidentRow.service_id == service_id)
        .where(col(IncidentRow.resolved_at).is_(None) | (col(IncidentRow.resolved_at) > since))
    )
    windows = []
    for row in (await session.exec(query)).all():
        started = row.started_at or row.first_seen_at
        if started < until:
            windows.append(IncidentWindow(started, row.resolved_at, row.impact))
    return tuple(sorted(windows, key=lambda w: w.started_at))


def _epoch_seconds(session: AsyncSession) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "sqlite":
        # Times are stored as UTC text, "YYYY-MM-DD HH:MM:SS.ffffff". strftime would round the
        # fraction to milliseconds (pushing 16:14:59.9996 into the next bucket): cut it off.
        return cast(func.strftime("%s", func.substr(ReportRow.at, 1, 19)), Integer)
    return cast(func.floor(func.extract("epoch", col(ReportRow.at))), Integer)


async def _learned_memory(session: AsyncSession, service_id: str) -> crowd.CrowdMemory | None:
    row = await session.get(CrowdMemoryRow, service_id)
    if row is None:
        return None
    try:
        memory = decode_crowd_memory(row.memory)
    except ValueError:
        log.warning("crowd memory of %s is unreadable; charting from stored reports", service_id)
        return None
    return memory if memory.learned_hours else None


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
    return _EPOCH + ((moment - _EPOCH) // step) * step


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
