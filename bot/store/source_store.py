"""The source aggregate: a polled source, the components and incidents it last reported, and
when it was last read. Keyword-only functions, one job each; writers stage, callers commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.status import (
    CLOSED_INCIDENT_STATUSES,
    Component,
    ComponentStatus,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    Indicator,
    PageInfo,
    Snapshot,
)
from bot.store.models import (
    ComponentRow,
    IncidentRow,
    IncidentUpdateRow,
    SourceRow,
)


async def get_source(*, session: AsyncSession, url: str) -> SourceRow | None:
    """The source row for a URL."""
    return (await session.exec(select(SourceRow).where(SourceRow.url == url))).first()


async def record_failure(
    *, session: AsyncSession, source: SourceRow, error: str, now: datetime
) -> None:
    """Remember that a read failed; the last good content stays as history, not as the present."""
    source.last_error = error[:500]
    source.consecutive_failures += 1
    source.fetched_at = now
    session.add(source)


async def record_not_modified(*, session: AsyncSession, source: SourceRow, now: datetime) -> None:
    """A conditional GET said our stored content is still current."""
    source.last_error, source.consecutive_failures = None, 0
    source.fetched_at = source.read_ok_at = now
    session.add(source)


async def record_snapshot(
    *,
    session: AsyncSession,
    source: SourceRow,
    snapshot: Snapshot,
    etag: str | None,
    last_modified: str | None,
    now: datetime,
) -> None:
    """Store what a successful read of the whole source said.

    When the snapshot lists every open incident (summary.json does), a stored open incident that
    is no longer listed is taken as resolved now; components it no longer lists are hidden.
    """
    source_id = _id(source)
    source.page_name, source.page_url = snapshot.page.name, snapshot.page.url
    source.indicator, source.description = snapshot.indicator.value, snapshot.description
    source.etag, source.last_modified = etag, last_modified
    source.last_error, source.consecutive_failures = None, 0
    source.fetched_at = source.read_ok_at = now
    session.add(source)
    await _store_components(session, source_id, snapshot.components, complete=True)
    await _store_incidents(
        session, source_id, snapshot.incidents, now, complete=snapshot.lists_all_open_incidents
    )


async def record_push(
    *, session: AsyncSession, source: SourceRow, snapshot: Snapshot, now: datetime
) -> None:
    """Store a pushed fragment (a webhook about one incident or component): upserts only."""
    source_id = _id(source)
    await _store_components(session, source_id, snapshot.components, complete=False)
    await _store_incidents(session, source_id, snapshot.incidents, now, complete=False)


async def _store_components(
    session: AsyncSession, source_id: int, components: Sequence[Component], *, complete: bool
) -> None:
    existing = {
        row.external_id: row
        for row in (
            await session.exec(select(ComponentRow).where(ComponentRow.source_id == source_id))
        ).all()
    }
    seen = set()
    for position, component in enumerate(components):
        seen.add(component.id)
        row = existing.get(component.id) or ComponentRow(
            source_id=source_id, external_id=component.id, name=component.name, status=""
        )
        row.name, row.status = component.name, component.status.value
        if complete or component.group is not None:  # a pushed component does not name its group
            row.group_name = component.group
        if complete or row.id is None:
            row.position = position if complete else len(existing) + position
        row.present = True
        session.add(row)
    for external_id, row in existing.items():
        if complete and external_id not in seen and row.present:
            row.present = False
            session.add(row)


async def _store_incidents(
    session: AsyncSession,
    source_id: int,
    incidents: Sequence[Incident],
    now: datetime,
    *,
    complete: bool,
) -> None:
    listed_ids = [i.id for i in incidents]
    query = select(IncidentRow).where(
        IncidentRow.source_id == source_id,
        or_(col(IncidentRow.resolved_at).is_(None), col(IncidentRow.external_id).in_(listed_ids)),
    )
    existing = {row.external_id: row for row in (await session.exec(query)).all()}
    listed = set()
    for incident in incidents:
        listed.add(incident.id)
        row = existing.get(incident.id)
        if row is None:
            row = IncidentRow(
                source_id=source_id,
                external_id=incident.id,
                name=incident.name,
                status=incident.status,
                impact=incident.impact,
                first_seen_at=now,
            )
        row.name, row.status, row.impact = incident.name[:500], incident.status, incident.impact
        row.url, row.started_at, row.resolved_at = (
            incident.url,
            incident.started_at,
            incident.resolved_at,
        )
        if row.resolved_at is None and incident.status in CLOSED_INCIDENT_STATUSES:
            row.resolved_at = incident.updates[0].created_at if incident.updates else now
        session.add(row)
        await session.flush()
        await _store_updates(session, _id(row), incident.updates)
    for external_id, row in existing.items():
        if complete and external_id not in listed and row.resolved_at is None:
            row.status, row.resolved_at = IncidentStatus.RESOLVED, now
            session.add(row)


async def _store_updates(
    session: AsyncSession, incident_id: int, updates: Iterable[IncidentUpdate]
) -> None:
    known = set(
        (
            await session.exec(
                select(IncidentUpdateRow.fingerprint).where(
                    IncidentUpdateRow.incident_id == incident_id
                )
            )
        ).all()
    )
    for update in updates:
        fingerprint = update.id or f"{update.created_at.isoformat()}|{update.status}"
        if fingerprint in known:
            continue
        known.add(fingerprint)
        session.add(
            IncidentUpdateRow(
                incident_id=incident_id,
                fingerprint=fingerprint[:300],
                status=update.status,
                body=update.body,
                created_at=update.created_at,
            )
        )


async def load_snapshot(
    *, session: AsyncSession, url: str, updates_per_incident: int = 1
) -> Snapshot | None:
    """What we last stored for a source: components, open incidents and their latest updates."""
    source = await get_source(session=session, url=url)
    if source is None or source.read_ok_at is None:
        return None
    source_id = _id(source)
    components = (
        await session.exec(
            select(ComponentRow)
            .where(ComponentRow.source_id == source_id, col(ComponentRow.present).is_(True))
            .order_by(col(ComponentRow.position))
        )
    ).all()
    incidents = (
        await session.exec(
            select(IncidentRow)
            .where(IncidentRow.source_id == source_id, col(IncidentRow.resolved_at).is_(None))
            .order_by(col(IncidentRow.started_at).desc())
        )
    ).all()
    return Snapshot(
        kind=source.kind,
        page=PageInfo(name=source.page_name, url=source.page_url),
        indicator=Indicator(source.indicator),
        description=source.description,
        components=tuple(
            Component(
                id=c.external_id, name=c.name, status=ComponentStatus(c.status), group=c.group_name
            )
            for c in components
        ),
        incidents=tuple(
            [await _incident_from_row(session, row, updates_per_incident) for row in incidents]
        ),
    )


async def _incident_from_row(session: AsyncSession, row: IncidentRow, limit: int) -> Incident:
    updates = (
        await session.exec(
            select(IncidentUpdateRow)
            .where(IncidentUpdateRow.incident_id == _id(row))
            .order_by(col(IncidentUpdateRow.created_at).desc())
            .limit(limit)
        )
    ).all()
    return Incident(
        id=row.external_id,
        name=row.name,
        status=row.status,
        impact=row.impact,
        started_at=row.started_at,
        resolved_at=row.resolved_at,
        url=row.url,
        updates=tuple(
            IncidentUpdate(status=u.status, body=u.body, created_at=u.created_at) for u in updates
        ),
    )


def _id(row: SourceRow | IncidentRow) -> int:
    if row.id is None:
        raise RuntimeError("row has no primary key yet; flush first")
    return row.id
