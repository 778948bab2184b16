"""The service-state aggregate: each service's derived state, and its open incidents counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
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
