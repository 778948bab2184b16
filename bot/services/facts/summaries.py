"""Services at a glance and in detail, gathered once from the store.

The dashboard, the JSON API and the badges render these facts, so they can never disagree; the
usual level, the API check and the overview's counts come from `levels` and `headline`, which
the chat commands (/status, /report, /faq) use too, not from a second copy of their logic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import crowd
from bot.core.history import PastIncident, mean_time_to_recovery, uptime_percent
from bot.core.links import plain_link_host
from bot.core.ranking import Candidate, rank
from bot.core.service_state import ServiceState, state_of_component
from bot.core.service_view import service_view
from bot.core.status import IncidentUpdate
from bot.services.alternatives import Alternative, operational_alternatives
from bot.services.deps import AppDeps
from bot.services.facts.levels import probe_failing, probe_urls
from bot.services.usual_levels import baseline_span, usual_rate
from bot.sources.catalog import ServiceDef
from bot.store import (
    community_store,
    crowd_store,
    overview_store,
    service_state_store,
    source_store,
)
from bot.store.community_store import Community, StoredIncident
from bot.store.crowd_baseline import learned_memories
from bot.store.crowd_models import EarlyWarningRow

HISTORY_DAYS = 90
WORKAROUNDS_SHOWN = 5
ALTERNATIVES_SHOWN = 6
MAX_UPDATES = 200
PUBLIC = Community(platform="web", community_id="public")
"""The dashboard is no community: it sees what every community sees unless hidden globally."""


@dataclass(frozen=True, slots=True)
class IncidentFact:
    """An official incident, with its updates newest first (maybe only the latest)."""

    id: str
    title: str
    impact: str
    status: str
    url: str | None
    started_at: datetime | None
    resolved_at: datetime | None
    updates: tuple[IncidentUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class EarlyWarningFact:
    """An unconfirmed warning raised by user reports before the official page said anything."""

    level: str
    first_report_at: datetime
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class ServiceSummary:
    """One service at a glance."""

    service: ServiceDef
    state: ServiceState
    since: datetime | None
    checked_at: datetime | None
    open_incidents: int
    incident: IncidentFact | None
    """The newest open official incident."""
    reports_last_hour: int
    usual_per_hour: float | None
    """Counted reports per hour users usually send now (`levels.usual_rate`); None while there
    are too few to say."""
    early_warning: EarlyWarningFact | None
    probe_failing: bool


@dataclass(frozen=True, slots=True)
class ComponentFact:
    """One component of the service's status page."""

    name: str
    group: str | None
    state: ServiceState


@dataclass(frozen=True, slots=True)
class DayFact:
    """One day of the uptime bar."""

    day: date
    uptime: float
    incidents: int
    worst_impact: str | None


@dataclass(frozen=True, slots=True)
class WorkaroundFact:
    """A shared workaround with its votes."""

    id: int
    title: str
    steps: str
    link: str | None
    created_at: datetime
    worked: int
    failed: int


@dataclass(frozen=True, slots=True)
class HistoryFact:
    """Incidents over the history window, uptime and mean time to recovery."""

    days: int
    incidents: tuple[StoredIncident, ...]
    uptime: float
    mean_time_to_recovery: timedelta | None
    by_day: tuple[DayFact, ...]


@dataclass(frozen=True, slots=True)
class ServiceDetail:
    """Everything the service page shows."""

    summary: ServiceSummary
    components: tuple[ComponentFact, ...]
    incidents: tuple[IncidentFact, ...]
    """Open official incidents with every update."""
    reports: tuple[tuple[datetime, int], ...]
    """Counted reports per hour over the last 24 hours, oldest first."""
    workarounds: tuple[WorkaroundFact, ...]
    alternatives: tuple[Alternative, ...]
    history: HistoryFact


_IMPACT_ORDER = {"none": 0, "minor": 1, "major": 2, "critical": 3}


async def summaries(deps: AppDeps, now: datetime) -> list[ServiceSummary]:
    """Every tracked service at a glance, in catalog order."""
    async with deps.sessions() as session:
        overview = await _overview(session, now)
        return [await _summary(session, service, overview, now) for service in deps.catalog]


async def summary(deps: AppDeps, service: ServiceDef, now: datetime) -> ServiceSummary:
    """One service at a glance."""
    async with deps.sessions() as session:
        return await _summary(session, service, await _overview(session, now), now)


@dataclass(frozen=True, slots=True)
class _Overview:
    states: dict[str, service_state_store.ServiceStateRecord]
    incidents: dict[str, list[StoredIncident]]
    last_hour: dict[str, int]
    earlier: dict[str, int]
    memories: dict[str, crowd.CrowdMemory]
    warnings: dict[str, EarlyWarningRow]


async def _overview(session: AsyncSession, now: datetime) -> _Overview:
    since, until = baseline_span(now)
    return _Overview(
        states=await service_state_store.service_states(session=session),
        incidents=await overview_store.open_incidents(session=session),
        last_hour=await overview_store.counted_reports(
            session=session, since=now - timedelta(hours=1), until=now
        ),
        earlier=await overview_store.counted_reports(session=session, since=since, until=until),
        memories=await learned_memories(session=session),
        warnings=await overview_store.open_warnings(session=session),
    )


async def _summary(
    session: AsyncSession, service: ServiceDef, overview: _Overview, now: datetime
) -> ServiceSummary:
    record = overview.states.get(service.id)
    open_now = overview.incidents.get(service.id, [])
    warning = overview.warnings.get(service.id)
    earlier = overview.earlier.get(service.id, 0)
    return ServiceSummary(
        service=service,
        state=record.state if record else ServiceState.UNKNOWN,
        since=record.since if record else None,
        checked_at=record.checked_at if record else None,
        open_incidents=len(open_now),
        incident=_from_stored(open_now[0]) if open_now else None,
        reports_last_hour=overview.last_hour.get(service.id, 0),
        usual_per_hour=usual_rate(earlier, overview.memories.get(service.id), now),
        early_warning=(
            EarlyWarningFact(
                level=warning.level,
                first_report_at=warning.first_report_at,
                opened_at=warning.opened_at,
            )
            if warning is not None
            else None
        ),
        probe_failing=await probe_failing(session, service.id, probe_urls(service)),
    )


def _from_stored(incident: StoredIncident) -> IncidentFact:
    return IncidentFact(
        id=incident.external_id,
        title=incident.title,
        impact=incident.impact,
        status=incident.status,
        url=incident.url,
        started_at=incident.started_at,
        resolved_at=incident.resolved_at,
        updates=tuple(
            IncidentUpdate(status=s, body=b, created_at=t) for s, b, t in incident.updates
        ),
    )


async def detail(deps: AppDeps, service: ServiceDef, now: datetime) -> ServiceDetail:
    """Everything the service page shows."""
    async with deps.sessions() as session:
        head = await _summary(session, service, await _overview(session, now), now)
        components: list[ComponentFact] = []
        incidents: list[IncidentFact] = []
        for source in service.official_sources:
            snapshot = await source_store.load_snapshot(
                session=session, url=source.url, updates_per_incident=MAX_UPDATES
            )
            if snapshot is None:
                continue
            view = service_view(snapshot, service.components, (service.name,))
            components += [
                ComponentFact(c.name, c.group, state_of_component(c.status))
                for c in view.components
            ]
            incidents += [
                IncidentFact(
                    id=i.id,
                    title=i.name,
                    impact=i.impact,
                    status=i.status,
                    url=i.url,
                    started_at=i.started_at,
                    resolved_at=i.resolved_at,
                    updates=i.updates,
                )
                for i in view.open_incidents
            ]
        reports = await report_counts(session, service.id, now, hours=24)
        workarounds = await _workarounds(session, service.id, now)
        alternatives = await operational_alternatives(
            session=session, catalog=deps.catalog, service=service, now=now
        )
        history = await history_of(session, service.id, now, days=HISTORY_DAYS)
    # Trouble first, so a long list never hides the broken component.
    components.sort(key=lambda c: -c.state.rank)
    return ServiceDetail(
        summary=head,
        components=tuple(components),
        incidents=tuple(incidents),
        reports=tuple(reports),
        workarounds=workarounds,
        alternatives=tuple(alternatives[:ALTERNATIVES_SHOWN]),
        history=history,
    )


async def report_counts(
    session: AsyncSession, service_id: str, now: datetime, *, hours: int
) -> list[tuple[datetime, int]]:
    """Counted reports per clock hour, the last ``hours`` hours including the current one."""
    current = now.replace(minute=0, second=0, microsecond=0)
    return await crowd_store.hourly_counts(
        session=session,
        service_id=service_id,
        since=current - timedelta(hours=hours - 1),
        until=current + timedelta(hours=1),
    )


async def _workarounds(
    session: AsyncSession, service_id: str, now: datetime
) -> tuple[WorkaroundFact, ...]:
    visible = await community_store.visible_workarounds(
        session=session, service_id=service_id, community=PUBLIC
    )
    by_id = {v.row.id or 0: v for v in visible}
    order = rank(
        [Candidate(id=v.row.id or 0, created_at=v.row.created_at, votes=v.votes) for v in visible],
        now,
    )
    chosen = []
    for candidate in order[:WORKAROUNDS_SHOWN]:
        item = by_id[candidate.id]
        worked = sum(1 for v in item.votes if v.worked)
        chosen.append(
            WorkaroundFact(
                id=candidate.id,
                title=item.row.title,
                steps=item.row.steps,
                # A stored link that hides its real host (user@host, %40…) is not passed on.
                link=item.row.link if item.row.link and plain_link_host(item.row.link) else None,
                created_at=item.row.created_at,
                worked=worked,
                failed=len(item.votes) - worked,
            )
        )
    return tuple(chosen)


async def history_of(
    session: AsyncSession, service_id: str, now: datetime, *, days: int
) -> HistoryFact:
    """Incidents, uptime, MTTR and a per-day bar over the last ``days`` days."""
    start = now - timedelta(days=days)
    incidents = await community_store.incidents_since(
        session=session, service_id=service_id, since=start
    )
    spans = [PastIncident(i.started_at, i.resolved_at, i.impact) for i in incidents]
    by_day = []
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for back in range(days - 1, -1, -1):
        day_start = today - timedelta(days=back)
        day_end = min(day_start + timedelta(days=1), now)
        touching = [
            i
            for i in incidents
            if i.started_at < day_end and (i.resolved_at is None or i.resolved_at >= day_start)
        ]
        worst = max(
            (i.impact for i in touching), key=lambda x: _IMPACT_ORDER.get(x, 1), default=None
        )
        uptime = (
            uptime_percent(spans, start=day_start, end=day_end) if day_end > day_start else 100.0
        )
        by_day.append(DayFact(day_start.date(), uptime, len(touching), worst))
    return HistoryFact(
        days=days,
        incidents=tuple(incidents),
        uptime=uptime_percent(spans, start=start, end=now),
        mean_time_to_recovery=mean_time_to_recovery(spans),
        by_day=tuple(by_day),
    )


async def incidents(
    deps: AppDeps, services: list[ServiceDef], since: datetime, *, limit: int
) -> list[tuple[ServiceDef, IncidentFact]]:
    """Official incidents started or still open since a moment, newest first, with updates."""
    by_id = {service.id: service for service in services}
    async with deps.sessions() as session:
        found = await overview_store.incidents_since(
            session=session, service_ids=list(by_id), since=since, limit=limit, updates=MAX_UPDATES
        )
    return [(by_id[service_id], _from_stored(incident)) for service_id, incident in found]
