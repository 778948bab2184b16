"""Persistence of detection: per-service memory, events (idempotent), service ↔ incident links."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.detection import ServiceMemory
from bot.core.events import DetectionEvent, EventKind
from bot.core.history import PastIncident
from bot.store.memory_codec import decode_memory, encode_memory
from bot.store.models import DetectionEventRow, IncidentRow, ServiceIncidentRow, ServiceMemoryRow

log = logging.getLogger(__name__)


async def load_memory(*, session: AsyncSession, service_id: str, source_url: str) -> ServiceMemory:
    """What detection remembers of a service through one source; fresh if none or unreadable."""
    row = await session.get(ServiceMemoryRow, (service_id, source_url))
    if row is None:
        return ServiceMemory()
    try:
        return decode_memory(row.memory)
    except (ValueError, KeyError, TypeError) as exc:
        # Starting over announces open incidents again, which beats never announcing anything.
        log.error("detection memory of %s unreadable (%s); starting afresh", service_id, exc)
        return ServiceMemory()


async def save_memory(
    *, session: AsyncSession, service_id: str, source_url: str, memory: ServiceMemory, now: datetime
) -> None:
    """Stage a service's memory of one source for the caller's commit."""
    row = await session.get(ServiceMemoryRow, (service_id, source_url))
    if row is None:
        row = ServiceMemoryRow(
            service_id=service_id, source_url=source_url, memory="", updated_at=now
        )
    row.memory, row.updated_at = encode_memory(memory), now
    session.add(row)


async def add_events(
    *, session: AsyncSession, events: Sequence[DetectionEvent]
) -> list[DetectionEventRow]:
    """Stage events whose key is new for their service; returns the rows actually added."""
    added: list[DetectionEventRow] = []
    by_service: dict[str, list[DetectionEvent]] = {}
    for event in events:
        by_service.setdefault(event.service_id, []).append(event)
    for service_id, service_events in by_service.items():
        keys = [e.key for e in service_events]
        known = set(
            (
                await session.exec(
                    select(DetectionEventRow.key).where(
                        DetectionEventRow.service_id == service_id,
                        col(DetectionEventRow.key).in_(keys),
                    )
                )
            ).all()
        )
        for event in service_events:
            if event.key in known:
                continue
            known.add(event.key)
            row = DetectionEventRow(
                service_id=event.service_id,
                kind=event.kind.value,
                key=event.key[:400],
                at=event.at,
                incident_id=event.incident_id,
                title=event.title[:500] if event.title else None,
                detail=json.dumps(dict(event.detail), sort_keys=True),
            )
            session.add(row)
            added.append(row)
    return added


async def events_for(
    *, session: AsyncSession, service_id: str | None = None, limit: int = 100
) -> list[DetectionEvent]:
    """Stored events, oldest first (the last ``limit`` of them)."""
    query = select(DetectionEventRow).order_by(col(DetectionEventRow.id).desc()).limit(limit)
    if service_id is not None:
        query = query.where(DetectionEventRow.service_id == service_id)
    rows = list((await session.exec(query)).all())
    return [
        DetectionEvent(
            kind=EventKind(row.kind),
            service_id=row.service_id,
            at=row.at,
            key=row.key,
            incident_id=row.incident_id,
            title=row.title,
            detail=json.loads(row.detail),
        )
        for row in reversed(rows)
    ]


async def link_incidents(
    *, session: AsyncSession, service_id: str, source_id: int, external_ids: Iterable[str]
) -> None:
    """Record that these incidents of a source concern a service (for its history)."""
    wanted = list(set(external_ids))
    if not wanted:
        return
    incident_ids = (
        await session.exec(
            select(IncidentRow.id).where(
                IncidentRow.source_id == source_id, col(IncidentRow.external_id).in_(wanted)
            )
        )
    ).all()
    linked = set(
        (
            await session.exec(
                select(ServiceIncidentRow.incident_id).where(
                    ServiceIncidentRow.service_id == service_id,
                    col(ServiceIncidentRow.incident_id).in_(list(incident_ids)),
                )
            )
        ).all()
    )
    for incident_id in incident_ids:
        if incident_id is not None and incident_id not in linked:
            session.add(ServiceIncidentRow(service_id=service_id, incident_id=incident_id))


async def incident_history(
    *, session: AsyncSession, service_id: str, since: datetime
) -> list[PastIncident]:
    """The service's incidents that started on or after ``since`` or were still open then."""
    query = (
        select(IncidentRow)
        .join(ServiceIncidentRow, col(ServiceIncidentRow.incident_id) == col(IncidentRow.id))
        .where(ServiceIncidentRow.service_id == service_id)
        .where((col(IncidentRow.resolved_at).is_(None)) | (col(IncidentRow.resolved_at) >= since))
    )
    return [
        PastIncident(
            started_at=row.started_at or row.first_seen_at,
            resolved_at=row.resolved_at,
            impact=row.impact,
        )
        for row in (await session.exec(query)).all()
    ]
