"""Property tests: any sequence of observations yields no exception, no duplicate, no orphan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.detection import (
    DetectionConfig,
    ServiceMemory,
    observe_snapshot,
    observe_source_failure,
)
from bot.core.events import DetectionEvent, EventKind
from bot.core.status import Component, ComponentStatus, Incident, IncidentUpdate, Snapshot
from bot.store.memory_codec import decode_memory, encode_memory

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ["investigating", "identified", "monitoring", "resolved", "postmortem"]


@st.composite
def observation(draw: st.DrawFn) -> Snapshot | None:
    if draw(st.integers(0, 9)) == 0:
        return None  # a failed read
    incidents = []
    for incident_id in draw(st.sets(st.sampled_from(["a", "b", "c"]), max_size=3)):
        count = draw(st.integers(1, 4))
        updates = tuple(
            IncidentUpdate(
                status=draw(st.sampled_from(STATUSES)),
                body=draw(st.text(max_size=20)),
                created_at=T0 + timedelta(minutes=draw(st.integers(0, 600))),
                id=f"{incident_id}{draw(st.integers(0, 5))}",
            )
            for _ in range(count)
        )
        status = updates[0].status
        incidents.append(
            Incident(
                id=incident_id,
                name=f"incident {incident_id}",
                status=status,
                impact=draw(st.sampled_from(["none", "minor", "major", "critical"])),
                started_at=T0,
                resolved_at=updates[0].created_at if status in {"resolved", "postmortem"} else None,
                url=None,
                updates=updates,
            )
        )
    components = (
        Component(id="c", name="API", status=draw(st.sampled_from(list(ComponentStatus)))),
    )
    return Snapshot(
        kind="statuspage",
        components=components,
        incidents=tuple(incidents),
        lists_all_open_incidents=draw(st.booleans()),
    )


@settings(max_examples=250, deadline=None)
@given(st.lists(observation(), max_size=12), st.lists(st.integers(1, 30), min_size=12, max_size=12))
def test_any_sequence_is_safe(observations: list[Snapshot | None], gaps: list[int]) -> None:
    config = DetectionConfig()
    memory = ServiceMemory()
    now = T0
    events: list[DetectionEvent] = []
    for snap, gap in zip(observations, gaps, strict=False):
        now += timedelta(minutes=gap)
        if snap is None:
            memory, new = observe_source_failure(
                memory, service_id="s", now=now, config=config, error="x"
            )
        else:
            memory, new = observe_snapshot(memory, snap, service_id="s", now=now, config=config)
        memory = decode_memory(encode_memory(memory))
        events += new
    # Finally the page lists nothing open: everything that was announced must end.
    memory, new = observe_snapshot(
        memory,
        Snapshot(kind="statuspage", lists_all_open_incidents=True),
        service_id="s",
        now=now + timedelta(hours=1),
        config=config,
    )
    events += new
    keys = [e.key for e in events]
    assert len(keys) == len(set(keys))
    opened = {e.incident_id for e in events if e.kind is EventKind.INCIDENT_OPENED}
    resolved = {e.incident_id for e in events if e.kind is EventKind.INCIDENT_RESOLVED}
    assert opened <= resolved
    assert all(m.resolved_at is not None for m in memory.incidents.values())
