"""Alert rules (pure): which detection events change which alert, and who should hear of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.core.events import DetectionEvent, EventKind
from bot.core.status import IncidentStatus, MaintenanceStatus

SEVERITY_RANK = {"none": 0, "unknown": 1, "minor": 1, "major": 2, "critical": 3}
SEVERITIES = ("minor", "major", "critical")

POST, EDIT, THREAD = "post", "edit", "thread"


class AlertKind(StrEnum):
    """What an alert is about (stored in ``alerts.kind``)."""

    INCIDENT = "incident"
    MAINTENANCE = "maintenance"
    EARLY_WARNING = "early_warning"


@dataclass(frozen=True, slots=True)
class SubscriptionRule:
    """What a subscribed channel wants to hear about."""

    id: int
    service_id: str
    components: tuple[str, ...] = ()
    min_severity: str = "minor"
    maintenance: bool = True


@dataclass(frozen=True, slots=True)
class AlertChange:
    """How one event changes an alert, and what each channel should then see."""

    subject_id: str
    kind: AlertKind  # incident or maintenance; early warnings have rules of their own
    title: str | None
    status: str
    impact: str
    url: str | None
    components: tuple[str, ...]
    update_body: str | None
    update_status: str | None
    update_at: datetime | None
    started_at: datetime | None
    resolved_at: datetime | None
    opens: bool
    thread_note: bool


def change_for(event: DetectionEvent) -> AlertChange | None:
    """The alert change an event makes, or None for events channels are not told about."""
    detail = event.detail
    components = tuple(c for c in detail.get("components", "").split("\n") if c)
    update_at = _time(detail.get("update_at"))
    if event.kind in (
        EventKind.INCIDENT_OPENED,
        EventKind.INCIDENT_UPDATED,
        EventKind.INCIDENT_RESOLVED,
        EventKind.POSTMORTEM_PUBLISHED,
    ):
        if event.incident_id is None:
            return None
        resolved = event.kind is EventKind.INCIDENT_RESOLVED
        said = detail.get("status", IncidentStatus.INVESTIGATING)
        return AlertChange(
            subject_id=event.incident_id,
            kind=AlertKind.INCIDENT,
            title=event.title,
            status=IncidentStatus.RESOLVED if resolved else said,
            impact=detail.get("impact", "minor"),
            url=detail.get("url"),
            components=components,
            update_body=detail.get("update_body"),
            update_status=detail.get("update_status"),
            update_at=update_at,
            started_at=_time(detail.get("started_at")),
            resolved_at=(_time(detail.get("resolved_at")) or event.at) if resolved else None,
            opens=event.kind is EventKind.INCIDENT_OPENED,
            thread_note=event.kind is not EventKind.INCIDENT_OPENED,
        )
    if event.kind in (
        EventKind.MAINTENANCE_SCHEDULED,
        EventKind.MAINTENANCE_STARTED,
        EventKind.MAINTENANCE_COMPLETED,
    ):
        if event.incident_id is None:
            return None
        return AlertChange(
            subject_id=event.incident_id,
            kind=AlertKind.MAINTENANCE,
            title=event.title,
            status=detail.get("status", MaintenanceStatus.SCHEDULED),
            impact="none",
            url=detail.get("url"),
            components=components,
            update_body=None,
            update_status=detail.get("status"),
            update_at=event.at,
            started_at=_time(detail.get("scheduled_for")) or event.at,
            resolved_at=event.at if event.kind is EventKind.MAINTENANCE_COMPLETED else None,
            opens=event.kind is EventKind.MAINTENANCE_SCHEDULED,
            thread_note=event.kind is not EventKind.MAINTENANCE_SCHEDULED,
        )
    return None


def wants(rule: SubscriptionRule, *, kind: str, impact: str, components: Sequence[str]) -> bool:
    """Whether a subscription wants an alert of this kind, impact and components.

    Maintenance has no severity, but follows the component filter as incidents do.
    """
    if kind == AlertKind.MAINTENANCE:
        if not rule.maintenance:
            return False
    elif SEVERITY_RANK.get(impact, 1) < SEVERITY_RANK.get(rule.min_severity, 1):
        return False
    if rule.components and components:
        wanted = {c.casefold() for c in rule.components}
        return any(c.casefold() in wanted for c in components)
    return True


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
