"""Facts the outage FAQ states (pure): duration estimates, cause and compensation statements.

Nothing here guesses. A cause is only what the provider's own updates say; an estimate is only
the spread of durations of similar past incidents, with the number of incidents it rests on.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.history import PastIncident
from bot.core.status import IncidentStatus

MIN_SIMILAR_INCIDENTS = 3
"""Fewer similar incidents than this and we say there is not enough history to estimate."""

_CAUSE = re.compile(
    r"\b(caus\w*|root[- ]cause|due to|because|attack\w*|ddos|malicious|misconfigur\w*|"
    r"configuration change|deploy\w*|rollback|rolled back|revert\w*|bug|upstream|"
    r"third[- ]party|network|capacity|hardware|power|outage at|traced to|identified)\b",
    re.IGNORECASE,
)
_COMPENSATION = re.compile(
    r"\b(credit\w*|compensat\w*|refund\w*|sla|service level)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class DurationEstimate:
    """The middle half of similar past incidents' durations, and how many there were."""

    low: timedelta
    """First quartile."""
    median: timedelta
    high: timedelta
    """Third quartile."""
    count: int


@dataclass(frozen=True, slots=True)
class ComponentChange:
    """A component changed status (from detection events)."""

    component: str
    to_status: str
    at: datetime


def similar_durations(
    history: Iterable[PastIncident], *, impact: str, exclude_started_at: datetime | None = None
) -> list[timedelta]:
    """Durations of resolved past incidents of the same impact (not the one being estimated)."""
    return [
        i.resolved_at - i.started_at
        for i in history
        if i.resolved_at is not None
        and i.resolved_at >= i.started_at
        and i.impact == impact
        and i.started_at != exclude_started_at
    ]


def estimate_duration(durations: Sequence[timedelta]) -> DurationEstimate | None:
    """Quartiles of the durations; None below `MIN_SIMILAR_INCIDENTS` incidents."""
    if len(durations) < MIN_SIMILAR_INCIDENTS:
        return None
    seconds = sorted(d.total_seconds() for d in durations)
    low, median, high = statistics.quantiles(seconds, n=4, method="inclusive")
    return DurationEstimate(
        low=timedelta(seconds=round(low)),
        median=timedelta(seconds=round(median)),
        high=timedelta(seconds=round(high)),
        count=len(durations),
    )


def remaining(estimate: DurationEstimate, elapsed: timedelta) -> tuple[timedelta, timedelta]:
    """How much longer, by the estimate: (at least, at most), never negative."""
    zero = timedelta()
    return max(zero, estimate.low - elapsed), max(zero, estimate.high - elapsed)


def says_cause(body: str, status: str = "") -> bool:
    """Whether an official update speaks about the cause (a postmortem always does)."""
    return status in {IncidentStatus.IDENTIFIED, IncidentStatus.POSTMORTEM} or bool(
        _CAUSE.search(body)
    )


def says_compensation(body: str) -> bool:
    """Whether an official update mentions credits, refunds or the SLA."""
    return bool(_COMPENSATION.search(body))


def affected_components(
    changes: Iterable[ComponentChange], now: datetime
) -> list[tuple[str, str, timedelta]]:
    """Components not operational by their latest change: (name, status, for how long)."""
    latest: dict[str, ComponentChange] = {}
    for change in sorted(changes, key=lambda c: c.at):
        latest[change.component] = change
    return sorted(
        (
            (name, change.to_status, now - change.at)
            for name, change in latest.items()
            if change.to_status != "operational"
        ),
        key=lambda item: -item[2],
    )
