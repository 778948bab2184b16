"""Detection end to end: real timelines replayed by a fake status page, restarts, probes."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.events import EventKind
from bot.core.service_state import ServiceState
from bot.sources.catalog import Catalog, parse_catalog
from bot.sources.fetch import new_http_session
from bot.sources.timeline import Timeline, incidents_at, parse_timeline, summary_at
from bot.store import detection_store, service_state_store
from bot.store.engine import session_factory
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import ANTHROPIC_TIMELINE, OPENAI_TIMELINE, make_poller, real_timeline

INCIDENTS_PATH = "/api/v2/incidents.json"
ANTHROPIC = real_timeline(ANTHROPIC_TIMELINE)
OPENAI = real_timeline(OPENAI_TIMELINE)


def catalog(url: str, **extra: object) -> Catalog:
    return parse_catalog(
        {
            "service": [
                {
                    "id": "svc",
                    "name": "Service",
                    "source": [{"kind": "statuspage", "url": url}],
                    **extra,
                }
            ]
        }
    )


def serve(server: FakeStatusServer, timeline: Timeline, clock: FakeClock) -> None:
    server.set_json(SUMMARY_PATH, summary_at(timeline, clock.now))
    server.set_json(INCIDENTS_PATH, incidents_at(timeline, clock.now))


async def stored_events(engine: AsyncEngine) -> list[tuple[EventKind, str | None, str]]:
    async with session_factory(engine)() as session:
        events = await detection_store.events_for(session=session, service_id="svc", limit=1000)
    return [
        (e.kind, e.detail.get("update_status"), e.detail.get("update_body", "")[:30])
        for e in events
    ]


def poll_moments(timeline: Timeline) -> list:
    """One poll a minute from five minutes before the first update until after the last."""
    start = timeline.started_at - timedelta(minutes=5)
    end = timeline.updates[-1].posted_at + timedelta(minutes=2)
    moments = []
    while start <= end:
        moments.append(start)
        start += timedelta(minutes=1)
    return moments


@pytest.fixture
async def http() -> AsyncIterator[object]:
    async with new_http_session(user_agent="outagebot-tests") as session:
        yield session


EXPECTED_ANTHROPIC = [
    (EventKind.INCIDENT_OPENED, "investigating", "We are currently investigating"),
    (EventKind.COMPONENT_CHANGED, None, ""),
    (EventKind.INCIDENT_UPDATED, "investigating", "We have identified that the out"[:30]),
    (EventKind.INCIDENT_UPDATED, "investigating", "We are continuing to investiga"),
    (EventKind.INCIDENT_UPDATED, "identified", "The issue has been identified "),
    (EventKind.INCIDENT_RESOLVED, "resolved", "As of 14:43 PT / 22:43 UTC we "),
    (EventKind.COMPONENT_CHANGED, None, ""),
    (EventKind.POSTMORTEM_PUBLISHED, "postmortem", "Between 13:25 and 14:43 PT tod"),
]


async def test_real_timeline_gives_each_event_once(
    engine: AsyncEngine, clock: FakeClock, http: object
) -> None:
    async with FakeStatusServer() as server:
        clock.now = ANTHROPIC.started_at - timedelta(minutes=5)
        serve(server, ANTHROPIC, clock)
        poller = await make_poller(engine, clock, catalog(server.url(SUMMARY_PATH)), http)
        for moment in poll_moments(ANTHROPIC):
            clock.now = moment
            serve(server, ANTHROPIC, clock)
            await poller.poll_all()
    events = await stored_events(engine)
    kinds = [e[0] for e in events]
    # One component changes per state flip; four components here, so four change events each way.
    assert kinds.count(EventKind.COMPONENT_CHANGED) == 8
    assert [e for e in events if e[0] is not EventKind.COMPONENT_CHANGED] == [
        e for e in EXPECTED_ANTHROPIC if e[0] is not EventKind.COMPONENT_CHANGED
    ]


async def test_restart_mid_incident_changes_nothing(
    engine: AsyncEngine, clock: FakeClock, http: object
) -> None:
    async with FakeStatusServer() as server:
        clock.now = ANTHROPIC.started_at - timedelta(minutes=5)
        serve(server, ANTHROPIC, clock)
        url = server.url(SUMMARY_PATH)
        poller = await make_poller(engine, clock, catalog(url), http)
        for index, moment in enumerate(poll_moments(ANTHROPIC)):
            if index in (40, 41, 90):  # a restart: fresh poller, caches gone, same database
                poller = await make_poller(engine, clock, catalog(url), http)
            clock.now = moment
            serve(server, ANTHROPIC, clock)
            await poller.poll_all()
    events = await stored_events(engine)
    non_component = [e for e in events if e[0] is not EventKind.COMPONENT_CHANGED]
    assert non_component == [
        e for e in EXPECTED_ANTHROPIC if e[0] is not EventKind.COMPONENT_CHANGED
    ]


async def test_downtime_misses_nothing(engine: AsyncEngine, clock: FakeClock, http: object) -> None:
    """The bot is down from before the incident until after it resolved: it still tells it."""
    async with FakeStatusServer() as server:
        url = server.url(SUMMARY_PATH)
        clock.now = OPENAI.started_at - timedelta(minutes=10)
        serve(server, OPENAI, clock)
        await (await make_poller(engine, clock, catalog(url), http)).poll_all()
        clock.now = OPENAI.updates[1].posted_at + timedelta(
            hours=1
        )  # after resolution, before postmortem
        serve(server, OPENAI, clock)
        await (await make_poller(engine, clock, catalog(url), http)).poll_all()
    kinds = [e[0] for e in await stored_events(engine)]
    assert kinds == [EventKind.INCIDENT_OPENED, EventKind.INCIDENT_RESOLVED]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe_catalog(urls: dict[str, str]) -> Catalog:
    return parse_catalog(
        {
            "service": [
                {
                    "id": sid,
                    "name": sid,
                    "source": [
                        {
                            "kind": "probe",
                            "url": url,
                            "expect_status": [401],
                            "latency_budget_ms": 60_000,
                        }
                    ],
                }
                for sid, url in urls.items()
            ]
        }
    )


async def test_probe_failures_open_and_close_with_hysteresis(
    engine: AsyncEngine, clock: FakeClock, http: object
) -> None:
    async with FakeStatusServer() as server:
        server.set_script("/v1/models", [Step(status=401)])
        cat = probe_catalog({"api": server.url("/v1/models")})
        poller = await make_poller(engine, clock, cat, http)
        states = []
        script = [401, 503, 503, 503, 503, 401, 401, 401]
        for code in script:
            server.set_script("/v1/models", [Step(status=code)])
            clock.advance(minutes=1)
            await poller.poll_all()
            async with session_factory(engine)() as session:
                states.append(
                    (await service_state_store.service_states(session=session))["api"].state
                )
        async with session_factory(engine)() as session:
            events = await detection_store.events_for(session=session, service_id="api")
    assert [e.kind for e in events] == [EventKind.PROBE_FAILING, EventKind.PROBE_RECOVERED]
    assert events[0].detail["http_status"] == "503"
    up, down = ServiceState.OPERATIONAL, ServiceState.PARTIAL_OUTAGE
    assert states == [up, up, up, down, down, down, up, up]


async def test_network_wide_failure_announces_nothing(
    engine: AsyncEngine, clock: FakeClock, http: object
) -> None:
    # Four providers on four hosts, none answering: that is our network, not four outages.
    urls = {f"p{i}": f"http://127.0.0.{i + 2}:{free_port()}/v1/models" for i in range(4)}
    poller = await make_poller(engine, clock, probe_catalog(urls), http)
    for _ in range(6):
        clock.advance(minutes=1)
        await poller.poll_all()
    async with session_factory(engine)() as session:
        events = await detection_store.events_for(session=session)
        states = await service_state_store.service_states(session=session)
    assert events == []
    assert {s.state for s in states.values()} == {ServiceState.UNKNOWN}  # never "operational"


def test_timeline_fixtures_parse(tmp_path: Path) -> None:
    assert ANTHROPIC.title == "Elevated errors across many models"
    assert [u.status for u in ANTHROPIC.updates] == [
        "investigating",
        "investigating",
        "investigating",
        "identified",
        "resolved",
        "postmortem",
    ]
    assert ANTHROPIC.components[2] == "Claude API (api.anthropic.com)"
    assert OPENAI.updates[0].posted_at.isoformat() == "2024-09-16T15:59:00+00:00"  # 08:59 PDT
    assert OPENAI.components == ("API",)
    with pytest.raises(ValueError, match="no incident URL"):
        parse_timeline("nothing here")
