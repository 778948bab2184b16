"""Derive one service's state from a snapshot of its status page (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from bot.core.status import ComponentStatus, Indicator, Snapshot


class ServiceState(StrEnum):
    """What we tell people about a service, worst last (``unknown`` means we could not read it)."""

    OPERATIONAL = "operational"
    MAINTENANCE = "maintenance"
    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNKNOWN = "unknown"

    @property
    def label(self) -> str:
        """Human words for the state."""
        return _LABELS[self]

    @property
    def rank(self) -> int:
        """Severity order; unknown sorts below operational because it is not a claim of trouble."""
        return _RANK[self]

    @property
    def in_trouble(self) -> bool:
        """Whether the state claims trouble: degraded or worse (maintenance is planned, unknown
        is no claim at all). The one definition /status, the dashboard, /faq, the crowd watch and
        /alternatives use."""
        return _RANK[self] > _RANK[ServiceState.MAINTENANCE]


_LABELS = {
    ServiceState.OPERATIONAL: "Operational",
    ServiceState.MAINTENANCE: "Under maintenance",
    ServiceState.DEGRADED: "Degraded performance",
    ServiceState.PARTIAL_OUTAGE: "Partial outage",
    ServiceState.MAJOR_OUTAGE: "Major outage",
    ServiceState.UNKNOWN: "Unknown (status page unreachable)",
}
_RANK = {
    ServiceState.UNKNOWN: -1,
    ServiceState.OPERATIONAL: 0,
    ServiceState.MAINTENANCE: 1,
    ServiceState.DEGRADED: 2,
    ServiceState.PARTIAL_OUTAGE: 3,
    ServiceState.MAJOR_OUTAGE: 4,
}
_FROM_COMPONENT = {
    ComponentStatus.OPERATIONAL: ServiceState.OPERATIONAL,
    ComponentStatus.UNDER_MAINTENANCE: ServiceState.MAINTENANCE,
    ComponentStatus.DEGRADED_PERFORMANCE: ServiceState.DEGRADED,
    ComponentStatus.PARTIAL_OUTAGE: ServiceState.PARTIAL_OUTAGE,
    ComponentStatus.MAJOR_OUTAGE: ServiceState.MAJOR_OUTAGE,
    ComponentStatus.UNKNOWN: ServiceState.UNKNOWN,
}
_FROM_INDICATOR = {
    Indicator.NONE: ServiceState.OPERATIONAL,
    Indicator.MAINTENANCE: ServiceState.MAINTENANCE,
    Indicator.MINOR: ServiceState.DEGRADED,
    Indicator.MAJOR: ServiceState.PARTIAL_OUTAGE,
    Indicator.CRITICAL: ServiceState.MAJOR_OUTAGE,
    Indicator.UNKNOWN: ServiceState.UNKNOWN,
}


def state_of_component(status: ComponentStatus) -> ServiceState:
    """Map a component's status to a service state."""
    return _FROM_COMPONENT[status]


def worst(states: Iterable[ServiceState]) -> ServiceState:
    """The most severe of several states; operational when there are none."""
    return max(states, key=lambda s: s.rank, default=ServiceState.OPERATIONAL)


def matches_components(component_name: str, group: str | None, wanted: Sequence[str]) -> bool:
    """Whether a component is one a service cares about (by its own or its group's name).

    Case and runs of blanks do not count: pages retype names ("Fine-Tuning", a double space).
    """
    names = {_folded(component_name)}
    if group:
        names.add(_folded(group))
    return any(_folded(w) in names for w in wanted)


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


def derive_state(
    snapshot: Snapshot | None, components_of_interest: Sequence[str] = ()
) -> ServiceState:
    """The state of a service whose page gave ``snapshot`` (None: the page could not be read).

    A service that names components of interest is judged by those components only, so ChatGPT
    and the OpenAI API can share one page. Otherwise the worse of the page indicator and its
    components wins, because pages often set one without the other.
    """
    if snapshot is None or snapshot.indicator is Indicator.UNKNOWN:
        return ServiceState.UNKNOWN
    if components_of_interest:
        chosen = [
            state_of_component(c.status)
            for c in snapshot.components
            if matches_components(c.name, c.group, components_of_interest)
        ]
        known = [s for s in chosen if s is not ServiceState.UNKNOWN]
        if known:
            return worst(known)
    component_states = (state_of_component(c.status) for c in snapshot.components)
    return worst([_FROM_INDICATOR[snapshot.indicator], *component_states])
