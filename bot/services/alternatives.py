"""Services that can stand in for a failing one: same capability, operational, not behind the
same failing upstream. Used by /alternatives and under major-outage alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.history import uptime_percent
from bot.core.service_state import ServiceState
from bot.sources.catalog import Catalog, ServiceDef
from bot.store import detection_store, service_state_store

UPTIME_WINDOW = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class Alternative:
    """A service that could stand in, with why."""

    service: ServiceDef
    shared: tuple[str, ...]
    """Capability tags it shares with the service asked about."""
    uptime: float


def failing_upstreams(
    service: ServiceDef, catalog: Catalog, states: dict[str, ServiceState]
) -> set[str]:
    """Upstreams of ``service`` that may be why it fails.

    An upstream we track counts when it is not operational; one we don't track counts whenever
    the service itself is in trouble, since we cannot rule it out.
    """
    own = states.get(service.id, ServiceState.UNKNOWN)
    troubled = own.in_trouble
    failing = set()
    for upstream in service.upstreams:
        tracked = catalog.get(upstream)
        if tracked is not None:
            state = states.get(tracked.id, ServiceState.UNKNOWN)
            if state.in_trouble:
                failing.add(upstream)
        elif troubled:
            failing.add(upstream)
    return failing


def same_job(service: ServiceDef, catalog: Catalog) -> list[tuple[ServiceDef, tuple[str, ...]]]:
    """Every other service sharing a capability tag with ``service``, with the tags shared.

    A tag names one job (docs/catalog.md): "code" writes code, "code-hosting" keeps the
    repositories, so a GitHub outage is never answered with an LLM API.
    """
    wanted = set(service.capabilities)
    found = []
    for other in catalog:
        shared = tuple(c for c in other.capabilities if c in wanted)
        if other.id != service.id and shared:
            found.append((other, shared))
    return found


async def operational_alternatives(
    *, session: AsyncSession, catalog: Catalog, service: ServiceDef, now: datetime
) -> list[Alternative]:
    """Operational services sharing a capability, minus those behind the same failing upstream.

    Best first: most shared capabilities, then highest uptime over `UPTIME_WINDOW`.
    """
    records = await service_state_store.service_states(session=session)
    states = {sid: record.state for sid, record in records.items()}
    avoid = failing_upstreams(service, catalog, states)
    found: list[Alternative] = []
    for other, shared in same_job(service, catalog):
        if states.get(other.id) is not ServiceState.OPERATIONAL:
            continue
        if avoid & set(other.upstreams) or other.id in avoid:
            continue
        history = await detection_store.incident_history(
            session=session, service_id=other.id, since=now - UPTIME_WINDOW
        )
        uptime = uptime_percent(history, start=now - UPTIME_WINDOW, end=now)
        found.append(Alternative(other, shared, uptime))
    found.sort(key=lambda a: (-len(a.shared), -a.uptime, a.service.name))
    return found
