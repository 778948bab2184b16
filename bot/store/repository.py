"""Repository functions: keyword-only, one job each. Writers stage changes; callers commit."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import bindparam, func, or_
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.service_state import ServiceState
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
from bot.store.migrate import MIGRATION_LOCK_KEY
from bot.store.models import (
    ComponentRow,
    IncidentRow,
    IncidentUpdateRow,
    ServiceIncidentRow,
    ServiceRow,
    SourceRow,
)


@dataclass(frozen=True, slots=True)
class ServiceStateRecord:
    """A service's stored state."""

    service_id: str
    state: ServiceState
    since: datetime | None
    checked_at: datetime | None


class CatalogService(Protocol):
    """What seeding needs of a catalog service (``bot.sources.catalog.ServiceDef`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...


class CatalogSource(Protocol):
    """What seeding needs of a polled source (``bot.sources.catalog.SourceDef`` is one)."""

    @property
    def kind(self) -> str: ...


class SeedableCatalog(Protocol):
    """The catalog as the store sees it: the store sits below the sources and never imports them."""

    def __iter__(self) -> Iterator[CatalogService]: ...
    def source_urls(self) -> Mapping[str, CatalogSource]: ...


async def sync_catalog(*, session: AsyncSession, catalog: SeedableCatalog) -> None:
    """Make sure every catalog service and polled source has a row (names kept up to date).

    Processes starting together on a fresh database all seed at once: on PostgreSQL they take
    turns under the migration lock, and the inserts are upserts so a race cannot fail anyway."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.exec(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    services = [
        {"id": service.id, "name": service.name, "provider": service.provider}
        for service in catalog
    ]
    for chunk in _chunks(services):
        insert_services = _insert_for(ServiceRow, postgres=postgres).values(chunk)
        await session.exec(
            insert_services.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "name": insert_services.excluded.name,
                    "provider": insert_services.excluded.provider,
                },
            )
        )
    sources = [{"url": url, "kind": source.kind} for url, source in catalog.source_urls().items()]
    for chunk in _chunks(sources):
        insert_sources = _insert_for(SourceRow, postgres=postgres).values(chunk)
        await session.exec(insert_sources.on_conflict_do_nothing(index_elements=["url"]))
    await session.commit()


def _chunks(rows: list[dict[str, str]], size: int = 1000) -> Iterator[list[dict[str, str]]]:
    # One INSERT of many rows binds a parameter per column and row: PostgreSQL allows 32,767
    # (SQLite, by default, 32,766), fewer than a catalog of 10,000 services needs.
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_for(table: type[SQLModel], *, postgres: bool) -> Any:
    # Both dialects spell an upsert ON CONFLICT, each with its own construct.
    return postgresql.insert(table) if postgres else sqlite.insert(table)


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


CheckedTouch = tuple[str, Sequence[str], datetime]
"""An unchanged, healthy read: (source URL, ids of the services it feeds, when)."""


def _touch_statements() -> tuple[UpdateBase, UpdateBase]:
    """The two UPDATEs of `touch_checked`, built once: only the parameters change."""
    sources = SourceRow.__table__  # type: ignore[attr-defined]
    services = ServiceRow.__table__  # type: ignore[attr-defined]
    source_now = bindparam("b_now", type_=sources.c.fetched_at.type)
    return (
        sql_update(sources)
        .where(sources.c.url == bindparam("b_url"))
        .values(
            fetched_at=source_now, read_ok_at=source_now, last_error=None, consecutive_failures=0
        ),
        sql_update(services)
        .where(services.c.id == bindparam("b_service_id"))
        .values(checked_at=bindparam("b_now", type_=services.c.checked_at.type)),
    )


_TOUCH_SOURCE, _TOUCH_SERVICE = _touch_statements()


async def touch_checked(*, session: AsyncSession, touches: Sequence[CheckedTouch]) -> None:
    """Unchanged, healthy reads: only the "last checked" times move. Two UPDATEs, each run
    once per read (or per service) in one round trip of many parameter sets."""
    if not touches:
        return
    connection = await session.connection()
    await connection.execute(
        _TOUCH_SOURCE, [{"b_url": url, "b_now": now} for url, _, now in touches]
    )
    services = [{"b_service_id": sid, "b_now": now} for _, ids, now in touches for sid in ids]
    if services:
        await connection.execute(_TOUCH_SERVICE, services)


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


async def set_service_state(
    *, session: AsyncSession, service_id: str, state: ServiceState, now: datetime
) -> bool:
    """Store a service's derived state; returns True when it changed (``since`` moves then)."""
    row = await session.get(ServiceRow, service_id)
    if row is None:
        raise LookupError(f"unknown service {service_id!r}")
    changed = row.state != state.value or row.state_since is None
    if changed:
        row.state, row.state_since = state.value, now
    row.checked_at = now
    session.add(row)
    return changed


async def service_states(*, session: AsyncSession) -> dict[str, ServiceStateRecord]:
    """Every service's stored state, by id."""
    rows = (await session.exec(select(ServiceRow))).all()
    return {
        row.id: ServiceStateRecord(
            service_id=row.id,
            state=ServiceState(row.state),
            since=row.state_since,
            checked_at=row.checked_at,
        )
        for row in rows
    }


async def open_incident_counts(*, session: AsyncSession) -> dict[str, int]:
    """Number of open incidents per service id."""
    query = (
        select(ServiceIncidentRow.service_id, func.count(col(IncidentRow.id)))
        .join(IncidentRow, col(IncidentRow.id) == col(ServiceIncidentRow.incident_id))
        .where(col(IncidentRow.resolved_at).is_(None))
        .group_by(col(ServiceIncidentRow.service_id))
    )
    return {service_id: count for service_id, count in (await session.exec(query)).all()}


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
