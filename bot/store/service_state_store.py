"""The service-state aggregate: each service's derived state, and its open incidents counted."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func
from sqlalchemy import update as sql_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.service_state import ServiceState
from bot.store.models import (
    IncidentRow,
    ServiceIncidentRow,
    ServiceRow,
)


@dataclass(frozen=True, slots=True)
class ServiceStateRecord:
    """A service's stored state."""

    service_id: str
    state: ServiceState
    since: datetime | None
    checked_at: datetime | None


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


_CHECKED_CHUNK = 500
"""Ids per IN list: under the 999 parameters of the oldest SQLite builds."""

_services = ServiceRow.__table__  # type: ignore[attr-defined]
_TOUCH_CHECKED = (  # built once: only the parameters change
    sql_update(_services)
    .where(_services.c.id.in_(bindparam("b_ids", expanding=True)))
    .values(checked_at=bindparam("b_now", type_=_services.c.checked_at.type))
)


async def touch_checked(*, session: AsyncSession, checked: Iterable[tuple[str, datetime]]) -> None:
    """Unchanged, healthy reads: only "last checked" moves, for each (service id, time) to the
    latest time given. One UPDATE per time and 500 services: the reads of a round share a time
    or two, so a round of thousands of pages is a handful of statements, not one per page."""
    latest: dict[str, datetime] = {}
    for service_id, now in checked:
        latest[service_id] = max(now, latest.get(service_id, now))
    ids_at: dict[datetime, list[str]] = {}
    for service_id, now in latest.items():
        ids_at.setdefault(now, []).append(service_id)
    connection = await session.connection()
    for now, ids in ids_at.items():
        for start in range(0, len(ids), _CHECKED_CHUNK):
            chunk = ids[start : start + _CHECKED_CHUNK]
            await connection.execute(_TOUCH_CHECKED, {"b_ids": chunk, "b_now": now})


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
