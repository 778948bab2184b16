"""Unchanged reads skip detection only while its outcome cannot differ from running it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.detection import (
    DetectionConfig,
    IncidentMemo,
    ServiceMemory,
    observe_snapshot,
    observe_source_failure,
    outcome_stands_until,
)
from bot.core.events import EventKind
from bot.core.status import (
    Component,
    ComponentStatus,
    Incident,
    IncidentUpdate,
    Maintenance,
    Snapshot,
)
from bot.sources import poll_quiet
from bot.sources.catalog import ServiceDef, SourceDef
from bot.sources.poll_quiet import QuietReads, looked_at

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
URL = "https://status.example.com/api/v2/summary.json"
SERVICE = ServiceDef(id="svc", name="Svc", provider="svc", sources=(SourceDef("statuspage", URL),))
KEY = (SERVICE.id, URL)
# Short enough that a few polls cross them both.
CONFIG = DetectionConfig(flap_hold=timedelta(minutes=5), forget_resolved_after=timedelta(hours=1))


def minor(
    incident_id: str, *, started: datetime | None, resolved: datetime | None = None
) -> Incident:
    status = "resolved" if resolved else "investigating"
    return Incident(
        id=incident_id,
        name=f"Incident {incident_id}",
        status=status,
        impact="minor",
        started_at=started,
        resolved_at=resolved,
        url=None,
        updates=(IncidentUpdate(status=status, body="", created_at=started or T0, id=incident_id),),
    )


def page(*incidents: Incident, maintenances: tuple[Maintenance, ...] = ()) -> Snapshot:
    return Snapshot(
        kind="statuspage",
        components=(Component(id="c", name="API", status=ComponentStatus.OPERATIONAL),),
        incidents=incidents,
        maintenances=maintenances,
        lists_all_open_incidents=True,
    )


class Poller:
    """The poller's 304 path: ask QuietReads; when it finds something, run detection in full
    (as the database path does) and keep what that left."""

    def __init__(self, memory: ServiceMemory | None = None) -> None:
        self.quiet = QuietReads(CONFIG)
        self.memories = {KEY: memory or ServiceMemory()}
        self.events: list[EventKind] = []

    def read(self, snapshot: Snapshot, now: datetime) -> bool:
        """One unchanged read; True when it was quiet."""
        kept = self.quiet.judge(URL, [SERVICE], snapshot, self.memories, now)
        if kept is not None:
            self.memories.update(kept)
            return True
        memory, events = observe_snapshot(
            self.memories[KEY], snapshot, service_id=SERVICE.id, now=now, config=CONFIG
        )
        self.memories[KEY] = memory
        self.events += [e.kind for e in events]
        return False


@pytest.fixture
def detections(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """When QuietReads ran detection."""
    calls: list[datetime] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(kwargs["now"])  # type: ignore[arg-type]
        return observe_snapshot(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(poll_quiet, "observe_snapshot", counted)
    return calls


def test_an_unchanged_snapshot_is_judged_once(detections: list[datetime]) -> None:
    poller = Poller()
    snapshot = page(minor("old", started=T0, resolved=T0 + timedelta(minutes=1)))
    poller.read(snapshot, T0)  # first look: detection learns the page
    for step in range(1, 200):
        assert poller.read(snapshot, T0 + timedelta(seconds=30 * step))
    # Once to find the page quiet; then nothing can change until it is: no detection at all.
    assert detections == [T0, T0 + timedelta(seconds=30)]
    assert poller.memories[KEY].last_observed == T0 + timedelta(seconds=30 * 199)
    # An equal snapshot that is not the very same object is judged afresh.
    equal = page(minor("old", started=T0, resolved=T0 + timedelta(minutes=1)))
    assert poller.read(equal, T0 + timedelta(hours=1))
    assert len(detections) == 3


def test_looking_again_moves_only_the_time() -> None:
    """The quiet path's copy of a memory (`looked_at`) carries every field but the time."""
    memory = ServiceMemory(
        last_observed=T0,
        components={"c": "degraded_performance"},
        incidents={"i": IncidentMemo(status="investigating", impact="minor", first_seen=T0)},
        maintenances={"m": "scheduled"},
        source_failures=2,
        source_stale=True,
        probe_failures=3,
        probe_successes=4,
        probe_down=True,
    )
    default = ServiceMemory()
    unset = [f.name for f in fields(memory) if getattr(memory, f.name) == getattr(default, f.name)]
    assert not unset, f"give {unset} a value here, so that the check below covers them"
    later = T0 + timedelta(minutes=1)
    assert looked_at(memory, later) == replace(memory, last_observed=later)


def test_a_held_minor_incident_opens_when_its_hold_ends(detections: list[datetime]) -> None:
    snapshot = page(minor("blip", started=T0 - timedelta(seconds=20)))
    poller = Poller()
    quiet = [poller.read(snapshot, T0 + timedelta(seconds=30 * step)) for step in range(20)]
    # Polls at 0:00 … 9:30; the hold (5 min from when the page says it started, before we
    # first saw it) ends at 4:40, so the poll at 5:00 announces it, not one later or earlier.
    assert quiet == [False] + [True] * 9 + [False] + [True] * 9
    assert poller.events == [EventKind.INCIDENT_OPENED]
    # Detection ran to learn the page, to find it quiet, when the hold ended, and once more
    # to find the announced incident quiet: never in between.
    assert detections == [T0 + timedelta(seconds=s) for s in (0, 30, 300, 330)]


def test_a_resolved_incident_is_forgotten_when_due() -> None:
    gone_at = T0 + timedelta(minutes=1)
    memory, _ = observe_snapshot(
        ServiceMemory(),
        page(minor("old", started=T0, resolved=gone_at)),
        service_id=SERVICE.id,
        now=T0,
        config=CONFIG,
    )
    empty = page()  # the incident has left the page
    poller = Poller(memory)
    forgotten_at = gone_at + CONFIG.forget_resolved_after + timedelta(microseconds=1)
    assert poller.read(empty, T0 + timedelta(minutes=2))
    assert poller.read(empty, forgotten_at - timedelta(microseconds=1))
    assert "old" in poller.memories[KEY].incidents
    assert not poller.read(empty, forgotten_at)  # memory changes: the database path runs
    assert "old" not in poller.memories[KEY].incidents
    assert poller.events == []


def test_memory_changed_elsewhere_voids_the_verdict() -> None:
    snapshot = page()
    poller = Poller()
    poller.read(snapshot, T0)
    assert poller.read(snapshot, T0 + timedelta(seconds=30))
    for minute in range(1, 4):  # the page failed to answer: stale
        poller.memories[KEY], _ = observe_source_failure(
            poller.memories[KEY],
            service_id=SERVICE.id,
            now=T0 + timedelta(minutes=minute),
            config=CONFIG,
            error="HTTP 503",
        )
    assert not poller.read(snapshot, T0 + timedelta(minutes=5))
    assert poller.events == [EventKind.SOURCE_RECOVERED]


def test_outcome_stands_forever_without_pending_rules() -> None:
    memory, _ = observe_snapshot(
        ServiceMemory(), page(), service_id=SERVICE.id, now=T0, config=CONFIG
    )
    assert outcome_stands_until(memory, page(), CONFIG) is None
    # A view with an incident detection never saw: no standing verdict at all.
    assert outcome_stands_until(
        memory, page(minor("new", started=T0)), CONFIG
    ) == datetime.min.replace(tzinfo=UTC)


INCIDENTS: dict[str, Callable[[], Incident]] = {
    "blip": lambda: minor("blip", started=T0 + timedelta(minutes=3)),
    "undated": lambda: minor("undated", started=None),
    "early": lambda: minor("early", started=T0 - timedelta(minutes=2)),
    "over": lambda: minor("over", started=T0, resolved=T0 + timedelta(minutes=20)),
}
MAINTENANCE = Maintenance(
    id="m",
    name="Upgrade",
    status="scheduled",
    scheduled_for=T0 + timedelta(minutes=30),
    scheduled_until=T0 + timedelta(minutes=90),
    url=None,
)


@st.composite
def pages(draw: st.DrawFn) -> Snapshot:
    chosen = draw(st.sets(st.sampled_from(sorted(INCIDENTS))))
    maintenances = (MAINTENANCE,) if draw(st.booleans()) else ()
    return page(*(INCIDENTS[name]() for name in sorted(chosen)), maintenances=maintenances)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(pages(), min_size=1, max_size=4),
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(1, 40 * 60), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_skipping_finds_exactly_what_detection_finds(
    snapshots: list[Snapshot], steps: list[tuple[int, int, bool]]
) -> None:
    """Against detection run on every read: the same verdict, the same memory, every time."""
    poller, reference = Poller(), ServiceMemory()
    now = T0
    for choice, gap_seconds, failed in steps:
        now += timedelta(seconds=gap_seconds)
        if failed:
            reference, _ = observe_source_failure(
                reference, service_id=SERVICE.id, now=now, config=CONFIG, error="x"
            )
            poller.memories[KEY] = reference
            continue
        snapshot = snapshots[choice % len(snapshots)]
        expected, events = observe_snapshot(
            reference, snapshot, service_id=SERVICE.id, now=now, config=CONFIG
        )
        quiet = not events and replace(expected, last_observed=None) == replace(
            reference, last_observed=None
        )
        assert poller.read(snapshot, now) is quiet
        assert poller.memories[KEY] == expected
        reference = expected
