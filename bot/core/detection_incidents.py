"""What detection reads off one official incident: whether it is over, when it ended, and the
details its events carry. Pure functions of the status model, with no detection memory."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.core.events import DetectionEvent
from bot.core.status import (
    CLOSED_INCIDENT_STATUSES,
    ComponentStatus,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    MaintenanceStatus,
    Snapshot,
)


def is_closed(incident: Incident) -> bool:
    """Whether the page says the incident is over."""
    return incident.resolved_at is not None or incident.status in CLOSED_INCIDENT_STATUSES


def ended_at(incident: Incident, now: datetime) -> datetime:
    """When a closed incident ended: its resolution, never a postmortem published years later."""
    if incident.resolved_at is not None:
        return incident.resolved_at
    for update in incident.updates:  # newest first
        if update.status in (IncidentStatus.RESOLVED, MaintenanceStatus.COMPLETED):
            return update.created_at
    return incident.updates[0].created_at if incident.updates else now


def has_postmortem(incident: Incident) -> bool:
    """Whether the incident, or one of its updates, is a postmortem."""
    return incident.status == IncidentStatus.POSTMORTEM or any(
        u.status == IncidentStatus.POSTMORTEM for u in incident.updates
    )


def incident_detail(
    incident: Incident, update: IncidentUpdate | None, **extra: str
) -> dict[str, str]:
    """The details an event about the incident (and one of its updates) carries."""
    detail = {"status": incident.status, "impact": incident.impact, **extra}
    if incident.url:
        detail["url"] = incident.url
    if incident.started_at:
        detail["started_at"] = incident.started_at.isoformat()
    if update is not None:
        detail["update_status"] = update.status
        detail["update_body"] = update.body[:4000]
        detail["update_at"] = update.created_at.isoformat()
    return detail


def name_affected_components(events: list[DetectionEvent], view: Snapshot) -> None:
    """Add the names of the components each incident touches, for per-channel filters."""
    by_id = {c.id: c for c in view.components}
    troubled = [c.name for c in view.components if c.status is not ComponentStatus.OPERATIONAL]
    affected: dict[str, list[str]] = {}
    for incident in view.incidents:
        named = [by_id[i].name for i in incident.component_ids if i in by_id]
        affected[incident.id] = named or troubled
    for index, event in enumerate(events):
        names = affected.get(event.incident_id or "")
        if names:
            events[index] = replace(event, detail={**event.detail, "components": "\n".join(names)})
