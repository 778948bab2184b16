"""Combine the endpoints of one Statuspage site into one snapshot."""

from __future__ import annotations

from dataclasses import replace

from bot.core.status import Component, Incident, Snapshot

PART_ENDPOINTS = ("components.json", "incidents.json")
"""Fetched beside summary.json: large and incident.io pages list only some components in the
summary, and only incidents.json still shows an incident after it resolves (and its postmortem)."""


def part_urls(summary_url: str) -> list[str]:
    """URLs of the extra endpoints of a page whose source is its summary.json."""
    if not summary_url.endswith("/summary.json"):
        return []
    base = summary_url.removesuffix("summary.json")
    return [base + name for name in PART_ENDPOINTS]


def merge_parts(summary: Snapshot, parts: list[Snapshot]) -> Snapshot:
    """The summary, completed with fuller component and incident lists from the parts."""
    components = summary.components
    incidents: dict[str, Incident] = {i.id: i for i in summary.incidents}
    for part in parts:
        if part.components:
            components = _union(components, part.components)
        for incident in part.incidents:
            current = incidents.get(incident.id)
            if current is None or _fuller(incident, current):
                incidents[incident.id] = incident
    merged = tuple(incidents.values())
    lists_all = summary.lists_all_open_incidents or any(p.lists_all_open_incidents for p in parts)
    if (components, merged, lists_all) == (
        summary.components,
        summary.incidents,
        summary.lists_all_open_incidents,
    ):
        return summary  # the parts add nothing: no second copy of the page to keep
    return replace(
        summary, components=components, incidents=merged, lists_all_open_incidents=lists_all
    )


def _union(summary: tuple[Component, ...], fuller: tuple[Component, ...]) -> tuple[Component, ...]:
    """Every component of both, in the fuller list's order, with the summary's fresher statuses.

    A component only the summary lists (created since components.json was cached) stays; a
    group name only the fuller list knows is filled in.
    """
    fresh = {c.id: c for c in summary}
    merged = []
    for component in fuller:
        current = fresh.pop(component.id, None)
        if current is None:
            merged.append(component)
        elif current.group is None and component.group is not None:
            merged.append(replace(current, group=component.group))
        else:
            merged.append(current)
    merged.extend(fresh.values())
    return tuple(merged)


def _fuller(candidate: Incident, current: Incident) -> bool:
    if len(candidate.updates) != len(current.updates):
        return len(candidate.updates) > len(current.updates)
    return candidate.resolved_at is not None and current.resolved_at is None
