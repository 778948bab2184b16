"""What keeps thousands of unchanged pages cheap: shared "last checked" writes, one merge and one
copy of each component and incident per page."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.sources.checked_writes import CheckedWriter
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.reader import SourceReader
from bot.sources.statuspage import parse_statuspage
from bot.sources.statuspage_merge import merge_parts
from bot.store import catalog_store, service_state_store, source_store
from bot.store.engine import create_engine, session_factory
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import FakeStatusServer
from tests.helpers import catalog_for, make_poller

GITHUB = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_github_2022-11-25_incident.json").read_text()
)
PAGES = 24


def serve_page(server: FakeStatusServer, base: str) -> str:
    """Serve GITHUB's summary, components and incidents under `base`; the summary URL."""
    page = GITHUB["page"]
    server.set_json(f"{base}summary.json", GITHUB)
    server.set_json(f"{base}components.json", {"page": page, "components": GITHUB["components"]})
    server.set_json(f"{base}incidents.json", {"page": page, "incidents": GITHUB["incidents"]})
    return server.url(f"{base}summary.json")


async def stored_catalog(engine: AsyncEngine, urls: dict[str, str]) -> None:
    """A catalog of one service per (id, statuspage URL), stored as the poller finds it."""
    async with session_factory(engine)() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for(urls))


@pytest.fixture
def commits(engine: AsyncEngine) -> Iterator[list[object]]:
    """Every commit the engine makes, while the test runs."""
    made: list[object] = []

    def on_commit(connection: object) -> None:
        made.append(connection)

    event.listen(engine.sync_engine, "commit", on_commit)
    yield made
    event.remove(engine.sync_engine, "commit", on_commit)


class TickingClock(FakeClock):
    """Each reading a millisecond later than the one before: every page is read at a moment of
    its own, as on the real clock."""

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


async def test_unchanged_pages_write_last_checked_together(
    engine: AsyncEngine, commits: list[object]
) -> None:
    clock = TickingClock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        urls = {f"s{i}": serve_page(server, f"/p{i}/api/v2/") for i in range(PAGES)}
        sessions = session_factory(engine)
        poller = await make_poller(engine, clock, catalog_for(urls), http, sessions=sessions)
        first_read_by = clock.now
        await poller.poll_all()
        clock.advance(seconds=61)  # "last checked" is due on every page
        read_from = clock.now
        commits.clear()
        updates: list[str] = []
        listener = lambda *args: updates.append(str(args[2]).split()[0])  # noqa: E731
        event.listen(engine.sync_engine, "before_cursor_execute", listener)
        try:
            await poller.poll_all()
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", listener)

    # Not one transaction per page: while other polls of the round are still reading, the
    # batch waits for them, so the whole round shares one; and though each page was read at a
    # moment of its own, one UPDATE: the time written is the start of the 10 s. Only the
    # services' "last checked" moves; a source keeps the time of the read that stored it.
    assert len(commits) == 1
    assert updates.count("UPDATE") == 1
    grid = read_from.replace(second=read_from.second // 10 * 10, microsecond=0)
    assert grid <= read_from < clock.now < grid + timedelta(seconds=10)
    async with sessions() as session:  # and every page's write is there once poll_all returns
        states = await service_state_store.service_states(session=session)
        for url in urls.values():
            source = await source_store.get_source(session=session, url=url)
            assert source is not None
            assert source.read_ok_at is not None
            assert first_read_by < source.read_ok_at < read_from
    assert {states[service].checked_at for service in urls} == {grid}


async def test_a_failed_shared_write_is_handed_back_whole(tmp_path: Path) -> None:
    missing = tmp_path / "no such directory" / "outagebot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{missing}")
    failed: list[tuple[list[str], Exception]] = []
    writer = CheckedWriter(
        session_factory(engine),
        on_failed=lambda touches, exc: failed.append(([url for url, _, _ in touches], exc)),
    )
    now = datetime(2026, 12, 6, tzinfo=UTC)
    try:
        writer.add("https://a.example/api/v2/summary.json", ["a"], now)
        writer.add("https://b.example/api/v2/summary.json", ["b"], now)
        await writer.flush()
    finally:
        await engine.dispose()
    [(urls, error)] = failed  # one batch, both pages in it
    assert urls == [
        "https://a.example/api/v2/summary.json",
        "https://b.example/api/v2/summary.json",
    ]
    assert isinstance(error, OperationalError)
    assert writer.writing is None


class SwitchableDatabase:
    """The sessions a poller uses: on the test's database, or, while `away`, on a server that
    refuses connections (the database gone, as the poller sees it)."""

    def __init__(self, engine: AsyncEngine, away: AsyncEngine) -> None:
        self._up, self._down = session_factory(engine), session_factory(away)
        self.away = False

    def __call__(self) -> AsyncSession:
        return (self._down if self.away else self._up)()


async def test_last_checked_lost_to_an_outage_is_written_at_the_next_read(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 12, 7, 12, 0, 1, tzinfo=UTC))
    away = create_engine("postgresql+asyncpg://outagebot@127.0.0.1:1/gone")  # port 1: refused
    database = SwitchableDatabase(engine, away)
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        urls = {f"s{i}": serve_page(server, f"/p{i}/api/v2/") for i in range(3)}
        poller = await make_poller(engine, clock, catalog_for(urls), http, sessions=database)
        try:
            await poller.poll_all()
            clock.advance(seconds=61)  # "last checked" due on every page, and the database away
            database.away = True
            await poller.poll_all()
            database.away = False
            clock.advance(seconds=20)  # well within the minute: written only if the last failed
            await poller.poll_all()
        finally:
            await away.dispose()

    async with session_factory(engine)() as session:
        states = await service_state_store.service_states(session=session)
    written = clock.now.replace(second=clock.now.second // 10 * 10)
    assert {states[service].checked_at for service in urls} == {written}
    logged = [r.getMessage() for r in caplog.records if r.name == "bot.sources.poller"]
    assert any(line.startswith("database unavailable: polling paused") for line in logged)
    assert any(line.startswith("database back: polling resumed") for line in logged)


class GatedSessions:
    """Sessions that, once `closed`, wait at the door until the test opens it again: a
    database slow to answer, as a write caught by shutdown sees it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._sessions = session_factory(engine)
        self.gate = asyncio.Event()
        self.gate.set()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        await self.gate.wait()
        async with self._sessions() as session:
            yield session


async def test_shutdown_waits_for_the_last_checked_a_poll_handed_over(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sessions = GatedSessions(engine)
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        url = serve_page(server, "/api/v2/")
        poller = await make_poller(engine, clock, catalog_for({"a": url}), http, sessions=sessions)
        await poller.poll(url)
        clock.advance(seconds=61)
        sessions.gate.clear()  # the write of "last checked" will wait for the database
        await poller.poll(url)  # unchanged: the poll hands its "last checked" over and ends
        draining = asyncio.create_task(poller.drain(grace_seconds=30))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not draining.done()  # shutdown waits for the write
        sessions.gate.set()
        await draining
    async with sessions() as session:
        states = await service_state_store.service_states(session=session)
    assert states["a"].checked_at == clock.now.replace(
        second=clock.now.second // 10 * 10, microsecond=0
    )


@pytest.mark.parametrize("how", ["flush", "finish"])
async def test_a_gathering_pause_is_cut_short_when_the_writes_are_wanted_now(
    engine: AsyncEngine, clock: FakeClock, how: str
) -> None:
    urls = {"a": "https://a.example/api/v2/summary.json", "b": "https://b.example/api/v2/x.json"}
    await stored_catalog(engine, urls)
    sessions = session_factory(engine)
    # Batches an hour apart: after the first, the next would gather for an hour.
    writer = CheckedWriter(
        sessions,
        on_failed=lambda _touches, exc: pytest.fail(f"write failed: {exc}"),
        min_gather_seconds=3600,
        max_gather_seconds=3600,
    )
    first, then = clock.now, clock.now + timedelta(minutes=1)
    writer.add(urls["a"], ["a"], first)
    await writer.flush()
    writer.add(urls["b"], ["b"], then)  # inside the hour: the writer pauses to gather
    for _ in range(5):
        await asyncio.sleep(0)
    assert writer.writing is not None  # pausing, nothing written yet
    async with asyncio.timeout(10):  # a pause not cut short would last the hour
        if how == "flush":  # poll_all, the console's reads
            await writer.flush()
        else:  # shutdown, with a grace longer than the pause
            await writer.finish(grace_seconds=7200)
    assert writer.writing is None
    async with sessions() as session:
        states = await service_state_store.service_states(session=session)
    assert (states["a"].checked_at, states["b"].checked_at) == (first, then)


async def test_shutdown_drops_a_write_the_database_does_not_take_within_the_grace(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    url = "https://a.example/api/v2/summary.json"
    await stored_catalog(engine, {"a": url})
    sessions = GatedSessions(engine)
    writer = CheckedWriter(sessions, on_failed=lambda _touches, exc: None)
    sessions.gate.clear()  # the database never answers
    writer.add(url, ["a"], clock.now)
    await writer.finish(grace_seconds=0.05)
    assert writer.writing is None  # given up: the next process writes it at its first read
    async with session_factory(engine)() as session:
        states = await service_state_store.service_states(session=session)
    assert states["a"].checked_at is None


async def test_a_batch_waits_for_busy_polls_only_so_long(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    url = "https://a.example/api/v2/summary.json"
    await stored_catalog(engine, {"a": url})
    sessions = session_factory(engine)
    # Other polls are always reading (they never end): the write still goes, at the bound.
    failures: list[Exception] = []
    writer = CheckedWriter(
        sessions,
        on_failed=lambda _touches, exc: failures.append(exc),
        polls_in_flight=lambda: 10,
        max_gather_seconds=0,
    )
    writer.add(url, ["a"], clock.now)
    await writer.flush()
    assert failures == []
    async with sessions() as session:
        states = await service_state_store.service_states(session=session)
    assert states["a"].checked_at == clock.now


async def test_last_checked_moves_each_row_to_its_latest_read_in_a_few_statements(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    """A batch of 1,200 services, two of them read twice (in either order): every row gets
    the latest time it was read at, in one UPDATE per time and 500 rows."""
    urls = {f"s{i}": f"https://p{i}.example/api/v2/summary.json" for i in range(1_200)}
    await stored_catalog(engine, urls)
    sessions = session_factory(engine)
    earlier, now = clock.now, clock.now + timedelta(seconds=30)
    checked = [(service, now) for service in urls]
    checked.insert(0, ("s1", earlier))  # read before: the later read wins
    checked.append(("s2", earlier))  # told late, read earlier: still the later
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]).split()[0])

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        async with sessions() as session:
            await service_state_store.touch_checked(session=session, checked=checked)
            await session.commit()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert statements.count("UPDATE") == 3  # 1,200 rows in 3 chunks
    async with sessions() as session:
        states = await service_state_store.service_states(session=session)
    assert {states[service].checked_at for service in urls} == {now}


async def test_an_unchanged_page_is_merged_once_and_kept_once() -> None:
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        url = serve_page(server, "/api/v2/")
        reader = SourceReader(HttpFetcher(http))
        first = await reader.read(kind="statuspage", url=url, options={})
        again = await reader.read(kind="statuspage", url=url, options={})

    assert first.snapshot is not None
    assert again.unchanged
    assert again.snapshot is first.snapshot  # three 304s: the last merge, not a new one
    # summary.json lists what components.json and incidents.json list: one copy is kept.
    summary, components, incidents = (
        reader._last[url],
        reader._parts[server.url("/api/v2/components.json")][2],
        reader._parts[server.url("/api/v2/incidents.json")][2],
    )
    assert components.components
    assert incidents.incidents
    assert all(a is b for a, b in zip(summary.components, components.components, strict=True))
    assert all(a is b for a, b in zip(summary.incidents, incidents.incidents, strict=True))


async def test_a_part_that_changes_under_an_unchanged_summary_is_merged_anew() -> None:
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        url = serve_page(server, "/api/v2/")
        reader = SourceReader(HttpFetcher(http))
        first = await reader.read(kind="statuspage", url=url, options={})
        extra = GITHUB["components"][0] | {"id": "new0component", "name": "Copilot Chat"}
        fuller = [*GITHUB["components"], extra]
        server.set_json("/api/v2/components.json", {"page": GITHUB["page"], "components": fuller})
        changed = await reader.read(kind="statuspage", url=url, options={})
        again = await reader.read(kind="statuspage", url=url, options={})

    assert first.snapshot is not None
    assert changed.snapshot is not None
    assert not changed.unchanged  # the summary answered 304, components.json did not
    assert "Copilot Chat" not in {c.name for c in first.snapshot.components}
    assert "Copilot Chat" in {c.name for c in changed.snapshot.components}
    assert again.unchanged
    assert again.snapshot is changed.snapshot  # the new merge, kept: not merged again


async def test_a_page_without_extra_endpoints_reads_as_its_summary() -> None:
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        server.set_json("/api/v2/summary.json", GITHUB)  # components and incidents.json: 404
        url = server.url("/api/v2/summary.json")
        reader = SourceReader(HttpFetcher(http))
        first = await reader.read(kind="statuspage", url=url, options={})
        again = await reader.read(kind="statuspage", url=url, options={})
        asked = len(server.requests)
        await reader.read(kind="statuspage", url=url, options={})
        asked_third = len(server.requests) - asked

    assert first.snapshot is not None
    assert first.snapshot == parse_statuspage(GITHUB)
    assert again.unchanged
    assert again.snapshot is first.snapshot
    assert asked_third == 1  # the 404ed endpoints are not asked again
    assert reader.footprint()["merged"] == 0


def test_parts_that_add_nothing_leave_the_summary_as_it_is() -> None:
    summary = parse_statuspage(GITHUB)
    components = parse_statuspage({"page": GITHUB["page"], "components": GITHUB["components"]})
    incidents = parse_statuspage({"page": GITHUB["page"], "incidents": GITHUB["incidents"]})
    assert merge_parts(summary, [components, incidents]) is summary  # kept once, not twice
    trimmed = parse_statuspage(GITHUB | {"components": GITHUB["components"][:3]})
    fuller = merge_parts(trimmed, [components])
    assert len(fuller.components) == len(summary.components)


async def test_a_catalog_of_thousands_of_services_is_stored(engine: AsyncEngine) -> None:
    # 11,000 services bind more parameters than one INSERT may carry on PostgreSQL (32,767).
    urls = {f"s{i}": f"https://p{i}.example/api/v2/summary.json" for i in range(11_000)}
    async with session_factory(engine)() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for(urls))
        states = await service_state_store.service_states(session=session)
        stored = await source_store.get_source(session=session, url=urls["s10999"])
    assert len(states) == len(urls)
    assert stored is not None
