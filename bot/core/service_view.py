"""Narrow a shared status page to one service's part of it (pure)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bot.core.service_state import matches_components
from bot.core.status import ComponentStatus, Incident, Snapshot


def service_view(
    snapshot: Snapshot, components_of_interest: Sequence[str], service_names: Sequence[str] = ()
) -> Snapshot:
    """The components and incidents of ``snapshot`` that concern a service.

    A service that names no components owns the whole page. Otherwise an incident belongs to it
    when it lists one of its components, or, when the page does not say which components an
    incident touches (incident.io pages), when its title names one of them or the service
    (whole words), or it is open while one of them is not operational. Names that match nothing
    on the page hide nothing: a renamed component must not silence a real outage.
    """
    if not components_of_interest:
        return snapshot
    components = tuple(
        c
        for c in snapshot.components
        if matches_components(c.name, c.group, components_of_interest)
    )
    if not components:
        return snapshot
    ids = {c.id for c in components}
    names = {c.name for c in components} | set(components_of_interest) | set(service_names)
    # Whole words only: ChatGPT's "Agent" must not claim an "Agents API" incident.
    pattern = re.compile(
        r"\b(?:" + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + r")\b",
        re.IGNORECASE,
    )
    troubled = any(c.status is not ComponentStatus.OPERATIONAL for c in components)
    incidents = tuple(i for i in snapshot.incidents if _concerns(i, ids, pattern, troubled))
    # A maintenance that names its components is the service's when one of them is its own.
    maintenances = tuple(
        m for m in snapshot.maintenances if not m.component_ids or ids.intersection(m.component_ids)
    )
    return replace(snapshot, components=components, incidents=incidents, maintenances=maintenances)


def _concerns(incident: Incident, ids: set[str], names: re.Pattern[str], troubled: bool) -> bool:
    if incident.component_ids:
        return bool(ids.intersection(incident.component_ids))
    if names.search(incident.name):
        return True
    return incident.is_open and troubled
