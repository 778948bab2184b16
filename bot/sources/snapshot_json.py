"""Serialise a Snapshot into the `outagebot check --json` contract shape."""

from __future__ import annotations

from bot.core.status import Component, Incident, IncidentUpdate, Maintenance, Snapshot
from bot.core.timeutil import format_timestamp


def snapshot_to_json(snapshot: Snapshot) -> dict[str, object]:
    """The contract's JSON object for one snapshot; timestamps are UTC to the second with Z."""
    return {
        "kind": snapshot.kind,
        "page": {"name": snapshot.page.name, "url": snapshot.page.url},
        "indicator": snapshot.indicator.value,
        "components": [_component(c) for c in snapshot.components],
        "incidents": [_incident(i) for i in snapshot.incidents],
        "maintenances": [_maintenance(m) for m in snapshot.maintenances],
    }


def _component(component: Component) -> dict[str, object]:
    """One leaf component."""
    return {
        "id": component.id,
        "name": component.name,
        "status": component.status.value,
        "group": component.group,
    }


def _incident(incident: Incident) -> dict[str, object]:
    """One incident with its updates, newest first."""
    return {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "started_at": format_timestamp(incident.started_at),
        "resolved_at": format_timestamp(incident.resolved_at),
        "url": incident.url,
        "updates": [_update(u) for u in incident.updates],
    }


def _update(update: IncidentUpdate) -> dict[str, object]:
    """One incident update."""
    return {
        "status": update.status,
        "body": update.body,
        "created_at": format_timestamp(update.created_at),
    }


def _maintenance(maintenance: Maintenance) -> dict[str, object]:
    """One scheduled maintenance window."""
    return {
        "id": maintenance.id,
        "name": maintenance.name,
        "status": maintenance.status,
        "scheduled_for": format_timestamp(maintenance.scheduled_for),
        "scheduled_until": format_timestamp(maintenance.scheduled_until),
    }
