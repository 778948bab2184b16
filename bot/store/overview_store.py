"""Read queries of the overview: each fact for every service in one grouped query.

The overview (the dashboard, the API, /status) shows every tracked service at once; asking the
per-service store functions once per service would cost a few hundred queries per page view.
Each function here answers for all services in one statement, over the same tables and rules as
its per-service counterpart. The read model (`bot.services.facts`) is their only caller.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.community_store import StoredIncident, latest_updates, stored_incident
from bot.store.crowd_models import EarlyWarningRow, ReportRow
from bot.store.models import IncidentRow, ServiceIncidentRow


async def open_incidents(*, session: AsyncSession) -> dict[str, list[StoredIncident]]:
    """Open official incidents of every service, newest first (no updates)."""
    rows = (
        await session.exec(
            select(ServiceIncidentRow.service_id, IncidentRow)
            .join(IncidentRow, col(IncidentRow.id) == col(ServiceIncidentRow.incident_id))
            .where(col(IncidentRow.resolved_at).is_(None))
        )
    ).all()
    found: dict[str, list[StoredIncident]] = {}
    for service_id, row in rows:
        found.setdefault(service_id, []).append(stored_incident(row))
    for incidents in found.values():
        incidents.sort(key=lambda i: i.started_at, reverse=True)
    return found


async def counted_reports(
    *, session: AsyncSession, since: datetime, until: datetime
) -> dict[str, int]:
    """Counted reports per service in [since, until)."""
    rows = (
        await session.exec(
            select(ReportRow.service_id, func.count())
            .where(
                col(ReportRow.counted).is_(True),
                col(ReportRow.at) >= since,
                col(ReportRow.at) < until,
            )
            .group_by(col(ReportRow.service_id))
        )
    ).all()
    return {service_id: int(count) for service_id, count in rows}


async def open_warnings(*, session: AsyncSession) -> dict[str, EarlyWarningRow]:
    """Every service's early warning that is still open."""
    rows = (
        await session.exec(select(EarlyWarningRow).where(col(EarlyWarningRow.closed_at).is_(None)))
    ).all()
    return {row.service_id: row for row in rows}


async def incidents_since(
    *, session: AsyncSession, service_ids: list[str], since: datetime, limit: int, updates: int
) -> list[tuple[str, StoredIncident]]:
    """(service id, incident) started or still open since ``since``, newest first, at most
    ``limit``, each with up to ``updates`` official updates, newest first.

    The limit applies in the database, so a year of history never loads more than one page.
    """
    if not service_ids:
        return []
    started = func.coalesce(col(IncidentRow.started_at), col(IncidentRow.first_seen_at))
    rows = (
        await session.exec(
            select(ServiceIncidentRow.service_id, IncidentRow)
            .join(IncidentRow, col(IncidentRow.id) == col(ServiceIncidentRow.incident_id))
            .where(col(ServiceIncidentRow.service_id).in_(service_ids))
            .where(
                (col(IncidentRow.resolved_at).is_(None)) | (col(IncidentRow.resolved_at) >= since)
            )
            .order_by(started.desc(), col(IncidentRow.id).desc())
            .limit(limit)
        )
    ).all()
    by_incident = await latest_updates(
        session=session, incident_ids=[row.id or 0 for _, row in rows], per_incident=updates
    )
    return [
        (service_id, stored_incident(row, by_incident.get(row.id or 0, ())))
        for service_id, row in rows
    ]
