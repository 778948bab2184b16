"""The normalised status model every source kind parses into.

A `Snapshot` is what one read of a status source says right now. It is a plain value: sources
build it, the store persists it, cogs and `outagebot check` render it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Indicator(StrEnum):
    """Overall page indicator, ordered from calm to worst (``unknown`` is "could not read")."""

    NONE = "none"
    MAINTENANCE = "maintenance"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        """Severity order used to pick the worst of several indicators."""
        return _INDICATOR_RANK[self]


_INDICATOR_RANK = {
    Indicator.NONE: 0,
    Indicator.MAINTENANCE: 1,
    Indicator.MINOR: 2,
    Indicator.MAJOR: 3,
    Indicator.CRITICAL: 4,
    Indicator.UNKNOWN: -1,
}


class ComponentStatus(StrEnum):
    """A component's state, with Statuspage's vocabulary."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class IncidentUpdate:
    """One official update posted on an incident."""

    status: str
    body: str
    created_at: datetime
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Incident:
    """An incident as the source reports it; ``updates`` are newest first."""

    id: str
    name: str
    status: str
    impact: str
    started_at: datetime | None
    resolved_at: datetime | None
    url: str | None
    updates: tuple[IncidentUpdate, ...] = ()
    component_ids: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        """Whether the incident is still going on."""
        return self.resolved_at is None and self.status not in CLOSED_INCIDENT_STATUSES


class IncidentStatus(StrEnum):
    """Where an incident (or one of its updates) stands, with Statuspage's vocabulary.

    Fields keep plain ``str``: a page may say something new, which is shown as it is.
    """

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    POSTMORTEM = "postmortem"


class MaintenanceStatus(StrEnum):
    """Where a scheduled maintenance stands, with Statuspage's vocabulary."""

    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"


CLOSED_INCIDENT_STATUSES = frozenset(
    # "completed": some feeds close incidents with the maintenance word.
    {IncidentStatus.RESOLVED, IncidentStatus.POSTMORTEM, MaintenanceStatus.COMPLETED}
)


class SourceKind(StrEnum):
    """Where a service's status is read from: three official kinds and our own probes."""

    STATUSPAGE = "statuspage"
    FEED = "feed"
    GCLOUD = "gcloud"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class Component:
    """A leaf component of a status page; ``group`` is its group's name, if any."""

    id: str
    name: str
    status: ComponentStatus
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Maintenance:
    """A scheduled maintenance window."""

    id: str
    name: str
    status: str
    scheduled_for: datetime | None
    scheduled_until: datetime | None
    url: str | None = None
    component_ids: tuple[str, ...] = ()  # the components it touches, when the page says


@dataclass(frozen=True, slots=True)
class PageInfo:
    """Who publishes the page."""

    name: str | None = None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything one read of a status source says."""

    kind: str
    page: PageInfo = field(default_factory=PageInfo)
    indicator: Indicator = Indicator.UNKNOWN
    description: str | None = None
    components: tuple[Component, ...] = ()
    incidents: tuple[Incident, ...] = ()
    maintenances: tuple[Maintenance, ...] = ()
    lists_all_open_incidents: bool = False
    """True when every open incident is listed, so one that disappears has ended (summary.json)."""

    @property
    def open_incidents(self) -> tuple[Incident, ...]:
        """Incidents that are not resolved yet."""
        return tuple(i for i in self.incidents if i.is_open)
