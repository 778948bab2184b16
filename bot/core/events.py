"""Detection events: what changed about a service, as the alert layer and history consume it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EventKind(StrEnum):
    """Every kind of change detection reports."""

    INCIDENT_OPENED = "incident_opened"
    INCIDENT_UPDATED = "incident_updated"
    INCIDENT_RESOLVED = "incident_resolved"
    POSTMORTEM_PUBLISHED = "postmortem_published"
    COMPONENT_CHANGED = "component_changed"
    MAINTENANCE_SCHEDULED = "maintenance_scheduled"
    MAINTENANCE_STARTED = "maintenance_started"
    MAINTENANCE_COMPLETED = "maintenance_completed"
    PROBE_FAILING = "probe_failing"
    PROBE_RECOVERED = "probe_recovered"
    SOURCE_STALE = "source_stale"
    SOURCE_RECOVERED = "source_recovered"


@dataclass(frozen=True, slots=True)
class DetectionEvent:
    """One change. ``key`` is unique per service, so storing an event twice is a no-op."""

    kind: EventKind
    service_id: str
    at: datetime
    key: str
    incident_id: str | None = None
    title: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
