"""Uptime and mean time to recovery from incident history (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

DOWN_IMPACTS = frozenset({"major", "critical"})
"""Impacts that count as downtime; minor incidents are degradation, not an outage."""


@dataclass(frozen=True, slots=True)
class PastIncident:
    """What history needs of an incident."""

    started_at: datetime
    resolved_at: datetime | None
    impact: str


def uptime_percent(incidents: Iterable[PastIncident], *, start: datetime, end: datetime) -> float:
    """Share of [start, end) not covered by a major or critical incident, in percent.

    Overlapping incidents count once; an open incident runs until ``end``.
    """
    if end <= start:
        raise ValueError("the window must end after it starts")
    spans = sorted(
        (max(i.started_at, start), min(i.resolved_at or end, end))
        for i in incidents
        if i.impact in DOWN_IMPACTS
    )
    down = timedelta()
    cursor = start
    for begin, finish in spans:
        begin = max(begin, cursor)
        if finish > begin:
            down += finish - begin
            cursor = finish
    return 100.0 * (1 - down / (end - start))


def mean_time_to_recovery(incidents: Iterable[PastIncident]) -> timedelta | None:
    """Average duration of resolved incidents, or None when none has resolved."""
    durations = [
        i.resolved_at - i.started_at
        for i in incidents
        if i.resolved_at is not None and i.resolved_at >= i.started_at
    ]
    if not durations:
        return None
    return sum(durations, timedelta()) / len(durations)
