"""Polling a fake status page with the real HTTP client: states, conditional GET, bad input."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.service_state import ServiceState
from bot.sources.catalog import Catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.engine import session_factory
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import catalog_for

GITHUB = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_github_2022-11-25_incident.json").read_text()
)
ITERABLE = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_iterable_2017-08-22.json").read_text()
)


@dataclass
class Rig:
    server: FakeStatusServer
    poller: StatusPoller
    catalog: Catalog
    engine: AsyncEngine
    clock: FakeClock

    @property
    def url(self) -> str:
        return self.server.url(SUMMARY_PATH)

    async def state(self, service_id: str = "example") -> ServiceState:
        async with session_factory(self.engine)() as session:
            return (await service_state_store.service_states(session=session))[service_id].state


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        catalog = catalog_for({"example": server.url(SUMMARY_PATH)})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        fetcher = HttpFetcher(http, timeout=0.5, max_body_bytes=1_000_000)
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=fetcher,
            prober=HttpProber(http),
            clock=clock,
        )
        yield Rig(server, poller, catalog, engine, clock)


async def test_poll_stores_state_and_uses_conditional_get(rig: Rig) -> None:
    rig.server.set_json(SUMMARY_PATH, GITHUB)
    first = rig.clock.now
    await rig.poller.poll_all()
    assert await rig.state() is ServiceState.PARTIAL_OUTAGE  # a component in partial_outage

    async def stored() -> tuple[object, object, object]:
        async with session_factory(rig.engine)() as session:
            source = await source_store.get_source(session=session, url=rig.url)
            record = (await service_state_store.service_states(session=session))["example"]
        assert source is not None
        return source.read_ok_at, record.checked_at, record.since

    rig.clock.advance(seconds=30)
    await rig.poller.poll_all()
    second = [r for r in rig.server.requests if r.path == SUMMARY_PATH][-1]
    assert second.headers.get("If-None-Match")  # the stored ETag went back: a 304
    assert await rig.state() is ServiceState.PARTIAL_OUTAGE
    # A quiet 304 writes nothing; "last checked" is written at most once a minute.
    assert await stored() == (first, first, first)
    rig.clock.advance(seconds=31)
    await rig.poller.poll_all()
    # At the start of the 10 s it was read in (12:01:01 -> 12:01:00); since: unchanged. The
    # source keeps the time of the read that stored its content: only "last checked" moved.
    read_in = rig.clock.now.replace(second=rig.clock.now.second // 10 * 10, microsecond=0)
    assert rig.clock.now - timedelta(seconds=10) < read_in < rig.clock.now
    assert await stored() == (first, read_in, first)


async def test_recovery_moves_state_and_since(rig: Rig) -> None:
    rig.server.set_json(SUMMARY_PATH, GITHUB)
    await rig.poller.poll_all()
    calm = copy.deepcopy(ITERABLE)
    rig.server.set_json(SUMMARY_PATH, calm)
    recovered_at = rig.clock.advance(minutes=5)
    await rig.poller.poll_all()
    async with session_factory(rig.engine)() as session:
        record = (await service_state_store.service_states(session=session))["example"]
        snap = await source_store.load_snapshot(session=session, url=rig.url)
    assert record.state is ServiceState.OPERATIONAL
    assert record.since == recovered_at
    assert snap is not None
    assert snap.incidents == ()


BAD_RESPONSES = {
    "http 500": Step(status=500, body=b"oops"),
    "html": Step.html("<html><body>Just a moment...</body></html>"),
    "truncated json": Step.truncated_json(GITHUB),
    "wrong shape": Step.json([1, 2, 3]),
    "json of the wrong object": Step.json({"hello": "world"}),
    # Heroku's status API: Statuspage's words (`status`, `incidents`), not its shape.
    "heroku status json": Step.json(
        {"status": [{"system": "Apps", "status": "green"}], "incidents": [], "scheduled": []}
    ),
    "50 MB body": Step(huge_bytes=50_000_000),
    "hang": Step(hang=True),
    "connection reset": Step(reset=True),
}


@pytest.mark.parametrize("bad", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
async def test_unreadable_page_is_unknown_then_recovers(
    rig: Rig, bad: Step, caplog: pytest.LogCaptureFixture
) -> None:
    rig.server.set_json(SUMMARY_PATH, ITERABLE)
    await rig.poller.poll_all()
    assert await rig.state() is ServiceState.OPERATIONAL

    rig.server.set_script(SUMMARY_PATH, [bad])
    with caplog.at_level(logging.WARNING, logger="bot.sources.poller"):
        for _ in range(2):
            rig.clock.advance(minutes=20)  # past any backoff
            await rig.poller.poll_all()  # never raises
            assert await rig.state() is ServiceState.OPERATIONAL  # one bad read proves nothing
        rig.clock.advance(minutes=20)
        await rig.poller.poll_all()
    assert await rig.state() is ServiceState.UNKNOWN  # stale after three: unknown, never "down"
    warnings = [r for r in caplog.records if r.name == "bot.sources.poller"]
    assert len(warnings) == 1  # one line per outage of a source, not one per poll
    assert "\n" not in warnings[0].getMessage()

    rig.server.set_json(SUMMARY_PATH, GITHUB)
    rig.clock.advance(minutes=20)
    await rig.poller.poll_all()
    assert await rig.state() is ServiceState.PARTIAL_OUTAGE


async def test_failures_back_off_exponentially(rig: Rig) -> None:
    rig.server.set_script(SUMMARY_PATH, [Step(status=503)])
    seconds_between_requests = []
    last = None
    for _ in range(40):  # 40 scheduled polls, 30 s apart = 20 minutes
        before = rig.server.count(SUMMARY_PATH)
        await rig.poller.poll_all()
        if rig.server.count(SUMMARY_PATH) > before:
            if last is not None:
                seconds_between_requests.append((rig.clock.now - last).total_seconds())
            last = rig.clock.now
        rig.clock.advance(seconds=30)
    # 30 s doubling with ±20 % jitter: gaps grow, and 40 polls send far fewer requests.
    assert len(seconds_between_requests) <= 6
    assert seconds_between_requests == sorted(seconds_between_requests)
    assert seconds_between_requests[-1] >= 240


async def test_not_modified_after_failure_keeps_state(rig: Rig) -> None:
    good = Step.json(ITERABLE)
    rig.server.set_script(SUMMARY_PATH, [good, Step(status=503), good])
    await rig.poller.poll_all()
    await rig.poller.poll_all()
    assert await rig.state() is ServiceState.OPERATIONAL
    rig.clock.advance(minutes=2)  # past the first backoff
    await rig.poller.poll_all()  # the page is unchanged: 304 against the stored ETag
    summary_requests = [r for r in rig.server.requests if r.path == SUMMARY_PATH]
    assert summary_requests[-1].headers.get("If-None-Match") == good.etag
    assert await rig.state() is ServiceState.OPERATIONAL
    async with session_factory(rig.engine)() as session:
        source = await source_store.get_source(session=session, url=rig.url)
    assert source is not None
    assert source.consecutive_failures == 0


async def test_one_broken_source_does_not_stop_others(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        catalog = catalog_for(
            {
                "good": server.url("/good/api/v2/summary.json"),
                "bad": server.url("/bad/api/v2/summary.json"),
            }
        )
        server.set_json("/good/api/v2/summary.json", ITERABLE)
        server.set_body("/bad/api/v2/summary.json", b"\x00\xff garbage")
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=HttpFetcher(http, timeout=1),
            prober=HttpProber(http),
            clock=clock,
        )
        await poller.poll_all()
        async with sessions() as session:
            states = await service_state_store.service_states(session=session)
    assert states["good"].state is ServiceState.OPERATIONAL
    assert states["bad"].state is ServiceState.UNKNOWN


async def test_flap_hold_ends_on_an_unchanged_page(rig: Rig) -> None:
    """A minor incident held back for five minutes is announced even if the page never changes."""
    page = copy.deepcopy(GITHUB)
    for incident in page["incidents"]:
        incident["impact"] = "minor"
        incident["started_at"] = incident["created_at"] = rig.clock.now.isoformat()
    page["status"]["indicator"] = "minor"
    rig.server.set_json(SUMMARY_PATH, page)
    await rig.poller.poll_all()
    await rig.poller.poll_all()  # seen once before: the memory is warm
    async with session_factory(rig.engine)() as session:
        assert await detection_store.events_for(session=session) == []
    rig.clock.advance(minutes=6)
    await rig.poller.poll_all()  # a 304, but the hold has run out
    async with session_factory(rig.engine)() as session:
        events = await detection_store.events_for(session=session)
    assert [e.kind.value for e in events] == ["incident_opened"]
    assert [r for r in rig.server.requests if r.path == SUMMARY_PATH][-1].headers.get(
        "If-None-Match"
    )
