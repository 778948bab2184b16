"""The per-service detection state machine: pure functions of (memory, observation) → events.

Nothing here does I/O. The poller loads a service's `ServiceMemory`, calls one `observe_*`
function, and stores the new memory and the events in one transaction, so a restart announces
nothing twice and misses nothing that changed while the bot was down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from bot.core.detection_incidents import (
    ended_at,
    has_postmortem,
    incident_detail,
    is_closed,
    name_affected_components,
)
from bot.core.events import DetectionEvent, EventKind
from bot.core.status import (
    Incident,
    IncidentStatus,
    IncidentUpdate,
    MaintenanceStatus,
    Snapshot,
)

SERIOUS_IMPACTS = frozenset({"major", "critical"})


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Thresholds that keep detection from crying wolf."""

    probe_failures_to_open: int = 3
    probe_successes_to_close: int = 2
    source_failures_to_stale: int = 3
    flap_hold: timedelta = timedelta(minutes=5)
    forget_resolved_after: timedelta = timedelta(days=14)


@dataclass(frozen=True, slots=True)
class IncidentMemo:
    """What detection remembers about one incident."""

    status: str
    impact: str
    first_seen: datetime
    update_keys: frozenset[str] = frozenset()
    announced: bool = False
    resolved_at: datetime | None = None
    postmortem: bool = False


@dataclass(frozen=True, slots=True)
class ServiceMemory:
    """Everything detection remembers about one service between observations."""

    last_observed: datetime | None = None
    components: Mapping[str, str] = field(default_factory=dict)
    incidents: Mapping[str, IncidentMemo] = field(default_factory=dict)
    maintenances: Mapping[str, str] = field(default_factory=dict)
    source_failures: int = 0
    source_stale: bool = False
    probe_failures: int = 0
    probe_successes: int = 0
    probe_down: bool = False


Outcome = tuple[ServiceMemory, list[DetectionEvent]]


def outcome_stands_until(
    memory: ServiceMemory, view: Snapshot, config: DetectionConfig
) -> datetime | None:
    """Until when observing ``view`` again finds nothing new, given ``memory``, what an
    observation of that very view which found nothing new left.

    Such an observation is a fixed point but for rules of time alone: a held minor incident is
    announced when its hold runs out, a resolved one gone from the page is forgotten. Before the
    first of those moments the outcome is the same; None: no such rule is pending.
    """
    due: list[datetime] = []
    for incident in view.incidents:
        memo = memory.incidents.get(incident.id)
        if memo is None:  # never observed: this memory is not what observing the view left
            return datetime.min.replace(tzinfo=UTC)
        if not memo.announced and memo.resolved_at is None:
            due.append(_hold_ends_at(memo, incident, config))
    listed = {incident.id for incident in view.incidents}
    for incident_id, memo in memory.incidents.items():
        if incident_id not in listed and memo.resolved_at is not None:
            due.append(_forgotten_at(memo.resolved_at, config))
    return min(due, default=None)


def _hold_ends_at(memo: IncidentMemo, incident: Incident, config: DetectionConfig) -> datetime:
    """When a minor incident still open is announced, whether or not the page changes."""
    since = incident.started_at or memo.first_seen
    return min(since, memo.first_seen) + config.flap_hold


def _forgotten_at(resolved_at: datetime, config: DetectionConfig) -> datetime:
    """The first moment a resolved incident gone from the page is forgotten: strictly after
    the retention (times are whole microseconds)."""
    return resolved_at + config.forget_resolved_after + timedelta(microseconds=1)


def update_key(update: IncidentUpdate) -> str:
    """A stable identity for an official update, with or without a source-given id."""
    return update.id or f"{update.created_at.isoformat()}|{update.status}"


def observe_snapshot(
    memory: ServiceMemory,
    view: Snapshot,
    *,
    service_id: str,
    now: datetime,
    config: DetectionConfig,
) -> Outcome:
    """Fold one successful read of the service's (already filtered) status into memory."""
    events: list[DetectionEvent] = []
    emit = _Emitter(service_id, now, events)
    if memory.source_stale:
        emit(EventKind.SOURCE_RECOVERED, f"source_recovered:{now.isoformat()}")
    incidents = _observe_incidents(memory, view, now, config, emit)
    name_affected_components(events, view)
    components = _observe_components(memory, view, emit)
    maintenances = _observe_maintenances(memory, view, emit)
    new_memory = replace(
        memory,
        last_observed=now,
        components=components,
        incidents=incidents,
        maintenances=maintenances,
        source_failures=0,
        source_stale=False,
    )
    return new_memory, events


def observe_source_failure(
    memory: ServiceMemory, *, service_id: str, now: datetime, config: DetectionConfig, error: str
) -> Outcome:
    """A read failed. After a few in a row the source is stale: state unknown, never down."""
    failures = memory.source_failures + 1
    events: list[DetectionEvent] = []
    stale = memory.source_stale or failures >= config.source_failures_to_stale
    if stale and not memory.source_stale:
        _Emitter(service_id, now, events)(
            EventKind.SOURCE_STALE, f"source_stale:{now.isoformat()}", detail={"error": error[:300]}
        )
    return replace(memory, source_failures=failures, source_stale=stale), events


def observe_probe(
    memory: ServiceMemory,
    *,
    ok: bool,
    service_id: str,
    now: datetime,
    config: DetectionConfig,
    network_suspect: bool,
    detail: Mapping[str, str] | None = None,
) -> Outcome:
    """Count probe results with hysteresis; when our own network looks down, say nothing."""
    events: list[DetectionEvent] = []
    emit = _Emitter(service_id, now, events)
    if ok:
        successes = memory.probe_successes + 1
        down = memory.probe_down
        if down and successes >= config.probe_successes_to_close:
            down = False
            emit(EventKind.PROBE_RECOVERED, f"probe_recovered:{now.isoformat()}", detail=detail)
        return replace(memory, probe_successes=successes, probe_failures=0, probe_down=down), events
    if network_suspect:
        # Every probe failing at once means our network, not theirs: neither count nor announce.
        return replace(memory, probe_successes=0), events
    failures = memory.probe_failures + 1
    down = memory.probe_down
    if not down and failures >= config.probe_failures_to_open:
        down = True
        emit(EventKind.PROBE_FAILING, f"probe_failing:{now.isoformat()}", detail=detail)
    return replace(memory, probe_failures=failures, probe_successes=0, probe_down=down), events


@dataclass(slots=True)
class _Emitter:
    service_id: str
    now: datetime
    events: list[DetectionEvent]

    def __call__(
        self,
        kind: EventKind,
        key: str,
        *,
        incident: Incident | None = None,
        subject_id: str | None = None,
        title: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self.events.append(
            DetectionEvent(
                kind=kind,
                service_id=self.service_id,
                at=self.now,
                key=key,
                incident_id=incident.id if incident else subject_id,
                title=incident.name if incident else title,
                detail=dict(detail or {}),
            )
        )


def _observe_incidents(
    memory: ServiceMemory, view: Snapshot, now: datetime, config: DetectionConfig, emit: _Emitter
) -> dict[str, IncidentMemo]:
    memos = dict(memory.incidents)
    listed = set()
    for incident in view.incidents:
        listed.add(incident.id)
        memos[incident.id] = _observe_incident(
            memory, memos.get(incident.id), incident, now, config, emit
        )
    for incident_id, memo in list(memos.items()):
        if incident_id in listed:
            continue
        if memo.resolved_at is None and view.lists_all_open_incidents:
            # Gone from a page that lists every open incident: it is over.
            if memo.announced:
                emit(
                    EventKind.INCIDENT_RESOLVED,
                    f"incident_resolved:{incident_id}:{now.isoformat()}",
                    subject_id=incident_id,
                    detail={
                        "status": IncidentStatus.RESOLVED,
                        "impact": memo.impact,
                        "inferred": "true",
                    },
                )
            memos[incident_id] = replace(memo, status=IncidentStatus.RESOLVED, resolved_at=now)
        elif memo.resolved_at is not None and now >= _forgotten_at(memo.resolved_at, config):
            del memos[incident_id]
    return memos


def _observe_incident(
    memory: ServiceMemory,
    memo: IncidentMemo | None,
    incident: Incident,
    now: datetime,
    config: DetectionConfig,
    emit: _Emitter,
) -> IncidentMemo:
    keys = frozenset(update_key(u) for u in incident.updates)
    closed = is_closed(incident)
    latest = incident.updates[0] if incident.updates else None
    if memo is None:
        memo = IncidentMemo(status=incident.status, impact=incident.impact, first_seen=now)
        if closed:
            ended = ended_at(incident, now)
            missed = memory.last_observed is not None and ended > memory.last_observed
            held = _is_flap(incident, ended, config)
            if missed and not held:
                # It opened and closed while we were not looking: tell it, once, as history.
                emit(
                    EventKind.INCIDENT_OPENED,
                    f"incident_opened:{incident.id}",
                    incident=incident,
                    detail=incident_detail(incident, latest, missed="true"),
                )
                emit(
                    EventKind.INCIDENT_RESOLVED,
                    f"incident_resolved:{incident.id}:{_iso(now)}",
                    incident=incident,
                    # Its own end, not the moment we learnt of it: the duration told is real.
                    detail=incident_detail(incident, latest, resolved_at=ended.isoformat()),
                )
            return replace(
                memo,
                update_keys=keys,
                announced=missed and not held,
                resolved_at=ended,
                postmortem=has_postmortem(incident),
            )
    if not memo.announced and memo.resolved_at is None:
        return _observe_pending(memo, incident, keys, closed, now, config, emit)
    return _observe_announced(memo, incident, keys, closed, now, emit)


def _iso(value: datetime) -> str:
    return value.isoformat()


def _is_flap(incident: Incident, ended: datetime, config: DetectionConfig) -> bool:
    if incident.impact in SERIOUS_IMPACTS or incident.started_at is None:
        return False
    return ended - incident.started_at < config.flap_hold


def _observe_pending(
    memo: IncidentMemo,
    incident: Incident,
    keys: frozenset[str],
    closed: bool,
    now: datetime,
    config: DetectionConfig,
    emit: _Emitter,
) -> IncidentMemo:
    if closed:
        # A minor blip that ended inside the hold window: never announced, remembered as such.
        return replace(
            memo,
            status=incident.status,
            impact=incident.impact,
            update_keys=keys,
            resolved_at=incident.resolved_at or now,
        )
    if incident.impact in SERIOUS_IMPACTS or now >= _hold_ends_at(memo, incident, config):
        latest = incident.updates[0] if incident.updates else None
        emit(
            EventKind.INCIDENT_OPENED,
            f"incident_opened:{incident.id}",
            incident=incident,
            detail=incident_detail(incident, latest),
        )
        return replace(
            memo, status=incident.status, impact=incident.impact, update_keys=keys, announced=True
        )
    return replace(memo, status=incident.status, impact=incident.impact)


def _observe_announced(
    memo: IncidentMemo,
    incident: Incident,
    keys: frozenset[str],
    closed: bool,
    now: datetime,
    emit: _Emitter,
) -> IncidentMemo:
    new_updates: list[IncidentUpdate] = []
    told = set(memo.update_keys)
    for update in reversed(incident.updates):
        if update_key(update) not in told:  # pages do repeat an update: tell it once
            told.add(update_key(update))
            new_updates.append(update)
    postmortem = memo.postmortem
    resolving = closed and memo.resolved_at is None
    for update in new_updates:
        key = update_key(update)
        if update.status == IncidentStatus.POSTMORTEM:
            if not postmortem:
                emit(
                    EventKind.POSTMORTEM_PUBLISHED,
                    f"postmortem:{incident.id}",
                    incident=incident,
                    detail=incident_detail(incident, update),
                )
            postmortem = True
        elif resolving and update is incident.updates[0]:
            continue  # told by the resolution event below
        elif memo.announced:
            extra = {"previous_impact": memo.impact} if incident.impact != memo.impact else {}
            emit(
                EventKind.INCIDENT_UPDATED,
                f"incident_updated:{incident.id}:{key}",
                incident=incident,
                detail=incident_detail(incident, update, **extra),
            )
    if not new_updates and incident.impact != memo.impact and memo.announced and not closed:
        emit(
            EventKind.INCIDENT_UPDATED,
            f"incident_updated:{incident.id}:impact:{incident.impact}:{_iso(now)}",
            incident=incident,
            detail=incident_detail(incident, None, previous_impact=memo.impact),
        )
    resolved_at = memo.resolved_at
    if resolving:
        resolved_at = incident.resolved_at or now
        if memo.announced:
            latest = incident.updates[0] if incident.updates else None
            emit(
                EventKind.INCIDENT_RESOLVED,
                f"incident_resolved:{incident.id}:{_iso(now)}",
                incident=incident,
                detail=incident_detail(incident, latest, resolved_at=resolved_at.isoformat()),
            )
    elif not closed and memo.resolved_at is not None:
        resolved_at = None  # reopened by the provider
        emit(
            EventKind.INCIDENT_UPDATED,
            f"incident_reopened:{incident.id}:{now.isoformat()}",
            incident=incident,
            detail=incident_detail(
                incident, incident.updates[0] if incident.updates else None, reopened="true"
            ),
        )
    return replace(
        memo,
        status=incident.status,
        impact=incident.impact,
        update_keys=memo.update_keys | keys,
        resolved_at=resolved_at,
        postmortem=postmortem,
    )


def _observe_components(memory: ServiceMemory, view: Snapshot, emit: _Emitter) -> dict[str, str]:
    components = dict(memory.components)
    for component in view.components:
        old = components.get(component.id)
        new = component.status.value
        if old is not None and old != new:
            emit(
                EventKind.COMPONENT_CHANGED,
                f"component:{component.id}:{emit.now.isoformat()}",
                detail={
                    "component_id": component.id,
                    "component": component.name,
                    "from": old,
                    "to": new,
                },
            )
        components[component.id] = new
    return components


_MAINTENANCE_EVENTS: dict[str, EventKind] = {
    MaintenanceStatus.SCHEDULED: EventKind.MAINTENANCE_SCHEDULED,
    MaintenanceStatus.IN_PROGRESS: EventKind.MAINTENANCE_STARTED,
    MaintenanceStatus.VERIFYING: EventKind.MAINTENANCE_STARTED,
    MaintenanceStatus.COMPLETED: EventKind.MAINTENANCE_COMPLETED,
}


def _observe_maintenances(memory: ServiceMemory, view: Snapshot, emit: _Emitter) -> dict[str, str]:
    maintenances = dict(memory.maintenances)
    first_look = memory.last_observed is None
    names = {c.id: c.name for c in view.components}
    listed = set()
    for maintenance in view.maintenances:
        listed.add(maintenance.id)
        old = maintenances.get(maintenance.id)
        new = maintenance.status
        maintenances[maintenance.id] = new
        kind = _MAINTENANCE_EVENTS.get(new)
        if first_look or kind is None or old == new or _MAINTENANCE_EVENTS.get(old or "") is kind:
            continue
        if old is None and kind is EventKind.MAINTENANCE_COMPLETED:
            continue  # finished before we ever saw it: history, not news
        detail = {"status": new}
        if maintenance.scheduled_for:
            detail["scheduled_for"] = maintenance.scheduled_for.isoformat()
        if maintenance.scheduled_until:
            detail["scheduled_until"] = maintenance.scheduled_until.isoformat()
        if maintenance.url:
            detail["url"] = maintenance.url
        touched = [names[i] for i in maintenance.component_ids if i in names]
        if touched:  # for channels that follow only some components
            detail["components"] = "\n".join(touched)
        emit(
            kind,
            f"{kind.value}:{maintenance.id}",
            subject_id=maintenance.id,
            title=maintenance.name,
            detail=detail,
        )
    if view.lists_all_open_incidents:
        # A page that lists every open incident lists its scheduled and active maintenances
        # too (Statuspage's summary): one gone from it has ended, like a vanished incident.
        for maintenance_id, status in list(maintenances.items()):
            if maintenance_id in listed:
                continue
            if _MAINTENANCE_EVENTS.get(status) is EventKind.MAINTENANCE_COMPLETED:
                del maintenances[maintenance_id]  # told already; nothing left to remember
                continue
            emit(
                EventKind.MAINTENANCE_COMPLETED,
                f"{EventKind.MAINTENANCE_COMPLETED.value}:{maintenance_id}",
                subject_id=maintenance_id,
                detail={"status": MaintenanceStatus.COMPLETED, "inferred": "true"},
            )
            maintenances[maintenance_id] = MaintenanceStatus.COMPLETED
    return maintenances
