"""A service's counted reports per time bucket and its official incidents over a span: the
queries behind the report chart (`bot.charts.series`).

One GROUP BY over the (service_id, at) index counts the reports.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Integer, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.history import PastIncident
from bot.store.crowd_models import ReportRow
from bot.store.models import IncidentRow, ServiceIncidentRow

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
"""Report times are counted in seconds from here; the chart's bucket grid starts here too."""


async def bucket_counts(
    *, session: AsyncSession, service_id: str, origin: datetime, until: datetime, bucket: timedelta
) -> dict[int, int]:
    """Counted reports in [origin, until) by bucket number (0 = the bucket starting at origin)."""
    size = int(bucket.total_seconds())
    number = ((_epoch_seconds(session) - int((origin - EPOCH).total_seconds())) // size).label(
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


async def incident_spans(
    *, session: AsyncSession, service_id: str, since: datetime, until: datetime
) -> tuple[PastIncident, ...]:
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
            windows.append(PastIncident(started, row.resolved_at, row.impact))
    return tuple(sorted(windows, key=lambda w: w.started_at))


def _epoch_seconds(session: AsyncSession) -> ColumnElement[int]:
    if session.get_bind().dialect.name == "sqlite":
        # Times are stored as UTC text, "YYYY-MM-DD HH:MM:SS.ffffff". strftime would round the
        # fraction to milliseconds (pushing 16:14:59.9996 into the next bucket): cut it off.
        return cast(func.strftime("%s", func.substr(ReportRow.at, 1, 19)), Integer)
    return cast(func.floor(func.extract("epoch", col(ReportRow.at))), Integer)
