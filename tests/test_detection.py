"""The detection state machine: pure, driven by snapshots and a fake clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.core.alerts import change_for
from bot.core.detection import (
    DetectionConfig,
    ServiceMemory,
    observe_probe,
    observe_snapshot,
    observe_source_failure,
)
from bot.core.events import DetectionEvent, EventKind
from bot.core.status import ComponentStatus, Incident, Indicator, Maintenance, Snapshot
from bot.store.memory_codec import decode_memory, encode_memory
from tests.helpers import incident, snapshot

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
CONFIG = DetectionConfig()
KINDS = EventKind


def summary(*incidents: Incident, api: ComponentStatus = ComponentStatus.OPERATIONAL) -> Snapshot:
    snap = snapshot(indicator=Indicator.NONE, components=(("API", api),), incidents=incidents)
    return Snapshot(
        kind=snap.kind,
        page=snap.page,
        indicator=snap.indicator,
        components=snap.components,
        incidents=snap.incidents,
        lists_all_open_incidents=True,
    )


class Driver:
    """Feeds observations through the machine, round-tripping memory through its JSON codec."""

    def __init__(self, memory: ServiceMemory | None = None) -> None:
        self.memory = memory or ServiceMemory()
        self.events: list[DetectionEvent] = []

    def see(self, snap: Snapshot, at: datetime) -> list[EventKind]:
        self.memory, new = observe_snapshot(
            self.memory, snap, service_id="svc", now=at, config=CONFIG
        )
        self.memory = decode_memory(encode_memory(self.memory))  # what a restart would load
        self.events += new
        return [e.kind for e in new]

    def fail(self, at: datetime) -> list[EventKind]:
        self.memory, new = observe_source_failure(
            self.memory, service_id="svc", now=at, config=CONFIG, error="HTTP 503"
        )
        self.events += new
        return [e.kind for e in new]


def major(minutes_in: int, *updates: tuple[str, str, int], resolved: int | None = None) -> Incident:
    return incident(
        "inc",
        started=T0,
        impact="major",
        updates=tuple((s, b, T0 + timedelta(minutes=m)) for s, b, m in reversed(updates)),
        resolved=T0 + timedelta(minutes=resolved) if resolved is not None else None,
    )


def test_first_look_announces_open_incidents_only() -> None:
    old = incident(
        "old",
        started=T0 - timedelta(days=3),
        updates=(("resolved", "done", T0 - timedelta(days=3)),),
        resolved=T0 - timedelta(days=3),
    )
    current = major(0, ("investigating", "Looking", 0))
    driver = Driver()
    assert driver.see(summary(old, current, api=ComponentStatus.MAJOR_OUTAGE), T0) == [
        KINDS.INCIDENT_OPENED
    ]
    opened = driver.events[0]
    assert opened.incident_id == "inc"
    assert opened.detail["update_body"] == "Looking"
    assert opened.detail["impact"] == "major"


def test_lifecycle_each_event_once() -> None:
    driver = Driver()
    first = major(0, ("investigating", "Looking", 0))
    assert driver.see(summary(first), T0) == [KINDS.INCIDENT_OPENED]
    assert driver.see(summary(first), T0 + timedelta(minutes=1)) == []
    second = major(0, ("investigating", "Looking", 0), ("identified", "Found it", 10))
    assert driver.see(summary(second), T0 + timedelta(minutes=11)) == [KINDS.INCIDENT_UPDATED]
    assert driver.see(summary(second), T0 + timedelta(minutes=12)) == []
    done = major(
        0,
        ("investigating", "Looking", 0),
        ("identified", "Found it", 10),
        ("resolved", "Fixed", 30),
        resolved=30,
    )
    assert driver.see(summary(done), T0 + timedelta(minutes=31)) == [KINDS.INCIDENT_RESOLVED]
    resolved = driver.events[-1]
    assert resolved.detail["update_body"] == "Fixed"
    assert resolved.detail["resolved_at"] == (T0 + timedelta(minutes=30)).isoformat()
    with_postmortem = major(
        0,
        ("investigating", "Looking", 0),
        ("identified", "Found it", 10),
        ("resolved", "Fixed", 30),
        ("postmortem", "What happened", 600),
        resolved=30,
    )
    # A resolved incident lives on in incidents.json, where its postmortem appears.
    assert driver.see(summary(with_postmortem), T0 + timedelta(hours=11)) == [
        KINDS.POSTMORTEM_PUBLISHED
    ]
    assert driver.see(summary(with_postmortem), T0 + timedelta(hours=12)) == []
    assert len({e.key for e in driver.events}) == len(driver.events)


def test_minor_blip_inside_hold_is_never_announced() -> None:
    driver = Driver(ServiceMemory(last_observed=T0 - timedelta(minutes=1)))
    blip = incident("blip", started=T0, impact="minor", updates=(("investigating", "Hm", T0),))
    assert driver.see(summary(blip), T0) == []
    assert driver.see(summary(blip), T0 + timedelta(minutes=2)) == []
    gone = incident(
        "blip",
        started=T0,
        impact="minor",
        updates=(("resolved", "ok", T0 + timedelta(minutes=3)), ("investigating", "Hm", T0)),
        resolved=T0 + timedelta(minutes=3),
    )
    assert driver.see(summary(gone), T0 + timedelta(minutes=3)) == []
    assert driver.events == []


def test_minor_incident_past_hold_is_announced_then_resolved() -> None:
    driver = Driver(ServiceMemory(last_observed=T0 - timedelta(minutes=1)))
    minor = incident("slow", started=T0, impact="minor", updates=(("investigating", "Slow", T0),))
    assert driver.see(summary(minor), T0) == []
    assert driver.see(summary(minor), T0 + timedelta(minutes=4)) == []
    assert driver.see(summary(minor), T0 + timedelta(minutes=5)) == [KINDS.INCIDENT_OPENED]
    assert driver.see(summary(), T0 + timedelta(minutes=20)) == [
        KINDS.INCIDENT_RESOLVED
    ]  # gone from summary
    assert driver.events[-1].detail["inferred"] == "true"


def test_minor_that_escalates_is_announced_at_once() -> None:
    driver = Driver(ServiceMemory(last_observed=T0 - timedelta(minutes=1)))
    minor = incident("x", started=T0, impact="minor", updates=(("investigating", "Slow", T0),))
    assert driver.see(summary(minor), T0) == []
    worse = incident("x", started=T0, impact="critical", updates=(("investigating", "Slow", T0),))
    assert driver.see(summary(worse), T0 + timedelta(minutes=1)) == [KINDS.INCIDENT_OPENED]
    assert driver.events[-1].detail["impact"] == "critical"


def test_impact_change_without_new_update_is_an_update() -> None:
    driver = Driver()
    driver.see(summary(major(0, ("investigating", "Looking", 0))), T0)
    critical = incident(
        "inc", started=T0, impact="critical", updates=(("investigating", "Looking", T0),)
    )
    assert driver.see(summary(critical), T0 + timedelta(minutes=5)) == [KINDS.INCIDENT_UPDATED]
    assert driver.events[-1].detail["previous_impact"] == "major"


def test_disappearing_incident_is_resolved_only_when_the_page_lists_all() -> None:
    driver = Driver()
    driver.see(summary(major(0, ("investigating", "Looking", 0))), T0)
    partial = replace(snapshot(), lists_all_open_incidents=False)  # like components.json
    assert driver.see(partial, T0 + timedelta(minutes=1)) == []
    assert driver.see(summary(), T0 + timedelta(minutes=2)) == [KINDS.INCIDENT_RESOLVED]


def test_incident_missed_while_down_is_told_once() -> None:
    driver = Driver(ServiceMemory(last_observed=T0))
    missed = major(0, ("investigating", "Oops", 60), ("resolved", "Fine", 120), resolved=120)
    assert driver.see(summary(missed), T0 + timedelta(hours=3)) == [
        KINDS.INCIDENT_OPENED,
        KINDS.INCIDENT_RESOLVED,
    ]
    assert driver.events[0].detail["missed"] == "true"
    assert driver.see(summary(missed), T0 + timedelta(hours=4)) == []


def missed_minor(minutes_long: int) -> Incident:
    """A minor incident that opened at T0 and closed `minutes_long` later."""
    ended = T0 + timedelta(minutes=minutes_long)
    return incident(
        "blip",
        started=T0,
        impact="minor",
        updates=(("resolved", "ok", ended), ("investigating", "Hm", T0)),
        resolved=ended,
    )


def test_a_missed_minor_blip_shorter_than_the_hold_is_never_told() -> None:
    # The bot was down from T0 - 1 min; the blip came and went in that time.
    driver = Driver(ServiceMemory(last_observed=T0 - timedelta(minutes=1)))
    shorter = missed_minor(4)  # the hold is 5 min
    assert driver.see(summary(shorter), T0 + timedelta(hours=1)) == []
    assert driver.see(summary(shorter), T0 + timedelta(hours=2)) == []  # nor later
    assert driver.events == []


def test_a_missed_minor_incident_as_long_as_the_hold_is_told_once() -> None:
    driver = Driver(ServiceMemory(last_observed=T0 - timedelta(minutes=1)))
    as_long = missed_minor(5)
    assert driver.see(summary(as_long), T0 + timedelta(hours=1)) == [
        KINDS.INCIDENT_OPENED,
        KINDS.INCIDENT_RESOLVED,
    ]
    assert driver.events[0].detail["missed"] == "true"
    assert driver.see(summary(as_long), T0 + timedelta(hours=2)) == []


def test_a_missed_incident_is_told_with_its_own_resolution_time() -> None:
    driver = Driver(ServiceMemory(last_observed=T0))
    missed = major(0, ("investigating", "Oops", 60), ("resolved", "Fine", 120), resolved=120)
    driver.see(summary(missed), T0 + timedelta(hours=3))
    change = change_for(driver.events[-1])
    assert change is not None
    assert (change.started_at, change.resolved_at) == (T0, T0 + timedelta(minutes=120))


def test_an_old_incident_whose_postmortem_arrives_late_is_not_news() -> None:
    # Resolved long before we last looked; only its postmortem is new (a push can bring it
    # with no resolved_at): no "opened" and no "resolved after 1472 d".
    long_ago = T0 - timedelta(days=1472)
    old = incident(
        "old",
        started=long_ago,
        updates=(
            ("postmortem", "What happened", T0 + timedelta(minutes=5)),
            ("resolved", "Fixed", long_ago + timedelta(hours=2)),
            ("investigating", "Looking", long_ago),
        ),
    )
    driver = Driver(ServiceMemory(last_observed=T0))
    assert driver.see(summary(old), T0 + timedelta(minutes=6)) == []


def test_component_changes_after_first_look() -> None:
    driver = Driver()
    assert driver.see(summary(api=ComponentStatus.DEGRADED_PERFORMANCE), T0) == []
    assert driver.see(summary(api=ComponentStatus.MAJOR_OUTAGE), T0 + timedelta(minutes=1)) == [
        KINDS.COMPONENT_CHANGED
    ]
    change = driver.events[-1].detail
    assert (change["component"], change["from"], change["to"]) == (
        "API",
        "degraded_performance",
        "major_outage",
    )


def maintenance(status: str) -> Snapshot:
    base = summary()
    window = Maintenance(
        id="m1",
        name="DB upgrade",
        status=status,
        scheduled_for=T0 + timedelta(hours=1),
        scheduled_until=T0 + timedelta(hours=2),
    )
    return Snapshot(
        kind=base.kind,
        components=base.components,
        maintenances=(window,),
        lists_all_open_incidents=True,
    )


def test_maintenance_lifecycle() -> None:
    driver = Driver()
    assert driver.see(summary(), T0) == []
    assert driver.see(maintenance("scheduled"), T0 + timedelta(minutes=1)) == [
        KINDS.MAINTENANCE_SCHEDULED
    ]
    assert driver.see(maintenance("in_progress"), T0 + timedelta(hours=1)) == [
        KINDS.MAINTENANCE_STARTED
    ]
    assert driver.see(maintenance("verifying"), T0 + timedelta(hours=1, minutes=30)) == []
    assert driver.see(maintenance("completed"), T0 + timedelta(hours=2)) == [
        KINDS.MAINTENANCE_COMPLETED
    ]
    assert driver.events[0].title == "DB upgrade"


def test_a_maintenance_gone_from_a_full_page_is_completed_once() -> None:
    driver = Driver()
    driver.see(summary(), T0)
    driver.see(maintenance("in_progress"), T0 + timedelta(minutes=1))
    partial = replace(summary(), lists_all_open_incidents=False)  # a push says nothing of it
    assert driver.see(partial, T0 + timedelta(minutes=2)) == []
    assert driver.see(summary(), T0 + timedelta(minutes=3)) == [KINDS.MAINTENANCE_COMPLETED]
    assert driver.events[-1].incident_id == "m1"
    assert driver.see(summary(), T0 + timedelta(minutes=4)) == []
    assert driver.memory.maintenances == {}  # told, then forgotten


def test_source_goes_stale_after_three_failures_and_recovers() -> None:
    driver = Driver()
    driver.see(summary(), T0)
    assert driver.fail(T0 + timedelta(minutes=1)) == []
    assert driver.fail(T0 + timedelta(minutes=2)) == []
    assert driver.fail(T0 + timedelta(minutes=3)) == [KINDS.SOURCE_STALE]
    assert driver.fail(T0 + timedelta(minutes=4)) == []
    assert driver.memory.source_stale
    assert driver.see(summary(), T0 + timedelta(minutes=5)) == [KINDS.SOURCE_RECOVERED]
    assert not driver.memory.source_stale


@pytest.mark.parametrize("suspect", [False, True])
def test_probe_hysteresis_and_network_suspicion(suspect: bool) -> None:
    memory = ServiceMemory()
    seen: list[EventKind] = []
    for minute, ok in enumerate([False, False, False, False, True, True, True]):
        memory, events = observe_probe(
            memory,
            ok=ok,
            service_id="svc",
            now=T0 + timedelta(minutes=minute),
            config=CONFIG,
            network_suspect=suspect and not ok,
        )
        seen += [e.kind for e in events]
    if suspect:
        assert seen == []  # our network looked down: nothing announced, nothing counted
    else:
        assert seen == [KINDS.PROBE_FAILING, KINDS.PROBE_RECOVERED]
    assert not memory.probe_down


def test_probe_needs_consecutive_failures() -> None:
    memory = ServiceMemory()
    for ok in [False, False, True, False, False, True]:
        memory, events = observe_probe(
            memory, ok=ok, service_id="svc", now=T0, config=CONFIG, network_suspect=False
        )
        assert events == []
