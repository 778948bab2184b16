"""Database faults: PostgreSQL going away under load (through a TCP proxy, never the shared
server), SQLite "database is locked" under concurrent writers, and a full SQLite disk.

Each asserts what a user sees (a friendly "try again", never a traceback), that nothing is
stored twice or half, and that the bot recovers by itself."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sqlite3
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import CommandRegistry, Reply
from bot.core.rich import to_plain
from bot.delivery.sender import ChannelRef, SentMessage
from bot.delivery.worker import OutboxWorker
from bot.runtime.leader import LeaderElector
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, parse_timeline, summary_at
from bot.store import alert_store, catalog_store, migrate
from bot.store.crowd_models import ReportRow
from bot.store.engine import create_engine, session_factory
from bot.store.models import DeliveryRow
from bot.store.pg_connection import asyncpg_connector
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.fakes.tcp_proxy import TcpProxy
from tests.helpers import catalog_for

SCALE = int(os.environ.get("CHAOS_SCALE", "1"))
TIMELINE = parse_timeline(
    (
        FIXTURES / "timelines" / "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
    ).read_text()
)
TRY_AGAIN = "please try again"
THANKS = "Thanks, report received"
WRITES_PER_THREAD = 300 * SCALE


@dataclass
class Rig:
    server: FakeStatusServer
    poller: StatusPoller
    worker: OutboxWorker
    sender: RecordingSender
    deps: AppDeps
    clock: FakeClock
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def say(self, command: str, *, user: str, admin: bool = False, **options: str) -> str:
        reply = await TestAdapter.of(self.deps, self.clock).invoke(
            command, options, user=user, community=f"g-{user}", channel=f"c-{user}", admin=admin
        )
        return headline_text(reply, self.clock.now)

    async def report(self, user: str) -> str:
        answer = await self.say("report", user=user, service="claude", what="errors")
        assert "Traceback" not in answer
        assert "Error" not in answer
        if THANKS in answer:
            self.acknowledged.append(user)
        else:
            assert TRY_AGAIN in answer, answer
            self.refused.append(user)
        return answer

    async def step(self) -> None:
        """One minute of the bot: a poll of the page, then an outbox round (as the app's loop
        does it: a failed round is logged and retried at the next tick)."""
        self.server.set_json(SUMMARY_PATH, summary_at(TIMELINE, self.clock.now))
        self.server.set_json("/api/v2/incidents.json", incidents_at(TIMELINE, self.clock.now))
        await self.poller.poll_all()
        try:
            await self.worker.run_once()
        except Exception:  # what OutboxWorker._rounds does with a failed round
            logging.getLogger("tests.chaos").warning("outbox round failed", exc_info=True)


def make_rig(
    engine: AsyncEngine, server: FakeStatusServer, http: object, clock: FakeClock
) -> tuple[Catalog, Rig]:
    catalog: Catalog = catalog_for({"claude": server.url(SUMMARY_PATH)})
    sessions = session_factory(engine)
    poller = StatusPoller(
        catalog=catalog,
        sessions=sessions,
        fetcher=HttpFetcher(http, timeout=5),  # type: ignore[arg-type]
        prober=HttpProber(http),  # type: ignore[arg-type]
        clock=clock,
        record_events=lambda s, e, n: alert_store.record_alert_events(session=s, events=e, now=n),
    )
    sender = RecordingSender()
    worker = OutboxWorker(sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    return catalog, Rig(server, poller, worker, sender, deps, clock)


def assert_each_channel_told_once(rig: Rig, channels: list[str]) -> None:
    """One post per channel, each incident update replied once, and the last edit resolved."""
    for channel in channels:
        calls = [c for c in rig.sender.calls if c.channel.channel_id == f"c-{channel}"]
        assert [c.action for c in calls].count("send") == 1, channel
        threads = [to_plain(c.reply.body, rig.clock.now) for c in calls if c.action == "thread"]
        assert len(threads) == len(set(threads)) == 5, (channel, threads)
        edits = [c for c in calls if c.action == "edit"]
        assert edits, channel
        assert (edits[-1].reply.title or "").startswith("✅"), channel
    posts = [key for key in rig.sender.messages if key.startswith("post:")]
    assert len(posts) == len(channels)  # nothing posted twice, even under another key


# --- PostgreSQL restarted under load -----------------------------------------------------------


@pytest.mark.postgres
async def test_postgres_going_away_under_load_loses_nothing_and_recovers(
    pg_engine: AsyncEngine,
    postgres_url: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    real = make_url(postgres_url)
    async with (
        TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy,
        FakeStatusServer() as server,
        new_http_session(user_agent="tests") as http,
    ):
        proxied_url = real.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False
        )
        engine = create_engine(proxied_url)
        try:
            catalog, rig = make_rig(engine, server, http, clock)
            async with rig.deps.sessions() as session:
                await catalog_store.sync_catalog(session=session, catalog=catalog)
            leads: list[str] = []
            elector = LeaderElector(
                asyncpg_connector(proxied_url),
                on_elected=lambda: leads.append("elected"),
                on_deposed=lambda: leads.append("deposed"),
                key=secrets.randbelow(2**31),  # advisory locks are server-wide: not the app's key
                check_timeout=5,
            )
            assert await elector.step()
            channels = [f"ch{i}" for i in range(8 * SCALE)]
            for channel in channels:
                answer = await rig.say("subscribe", user=channel, admin=True, service="claude")
                assert "Subscribed" in answer

            # Cut the database while the first alert is being fanned out: some channels have
            # been posted to, their "done" is not yet stored.
            cut_after = len(channels) // 2
            original_send = rig.sender.send
            cuts: list[int] = []

            async def send_then_maybe_cut(
                channel: ChannelRef, reply: Reply, *, key: str, mention_role: str | None = None
            ) -> SentMessage:
                sent = await original_send(channel, reply, key=key, mention_role=mention_role)
                if len(rig.sender.calls) == cut_after and not cuts:
                    cuts.append(proxy.open_connections)
                    await proxy.cut()
                return sent

            rig.sender.send = send_then_maybe_cut  # type: ignore[method-assign]
            clock.now = TIMELINE.started_at - timedelta(minutes=5)
            reporters = iter(f"user{i}" for i in range(10_000))
            outage_minutes = 0
            while True:
                await rig.step()
                clock.advance(minutes=1)
                if cuts:
                    break
                assert THANKS in await rig.report(next(reporters))
                assert clock.now < TIMELINE.updates[-1].posted_at, "the fan-out never started"
            assert cuts[0] > 0  # connections really were open when they were cut

            # Down for a few minutes of the bot's time: every part fails cleanly.
            for _ in range(3):
                await rig.step()
                assert TRY_AGAIN in await rig.report(next(reporters))
                assert not await elector.step()
                clock.advance(minutes=1)
                outage_minutes += 1
            assert leads == ["elected", "deposed"]
            assert len(rig.refused) == 3

            # Back: no restart of anything, the same engine and elector carry on.
            await proxy.resume()
            assert await elector.step()
            assert leads == ["elected", "deposed", "elected"]
            end = TIMELINE.updates[-1].posted_at + timedelta(minutes=15)
            while clock.now <= end:
                await rig.step()
                assert THANKS in await rig.report(next(reporters))
                clock.advance(minutes=1)

            assert_each_channel_told_once(rig, channels)
            async with rig.deps.sessions() as session:
                statuses = Counter((await session.exec(select(DeliveryRow.status))).all())
                stored = Counter((await session.exec(select(ReportRow.reporter_hash))).all())
            assert set(statuses) == {"done"}, statuses
            # Each acknowledged report stored once; a refused one at most once (its commit may
            # have reached the server before the cut) and never twice.
            assert len(stored) >= len(rig.acknowledged)
            assert max(stored.values()) == 1
            assert len(stored) <= len(rig.acknowledged) + len(rig.refused)
            await elector.resign()
        finally:
            await engine.dispose()
    messages = [r.getMessage() for r in caplog.records]
    assert any("leader: lost the lock" in m for m in messages)
    assert any("database unreachable" in m for m in messages)
    assert outage_minutes == 3


# --- SQLite: concurrent writers and "database is locked" ---------------------------------------


@dataclass
class ReportRig:
    deps: AppDeps
    clock: FakeClock
    acknowledged: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def report(self, user: str, details: str | None = None) -> str:
        options = {"service": "claude", "what": "errors"} | (
            {"details": details} if details else {}
        )
        reply = await TestAdapter.of(self.deps, self.clock).invoke(
            "report", options, user=user, community=f"g-{user}", channel="c1"
        )
        answer = headline_text(reply, self.clock.now)
        assert "Traceback" not in answer
        assert "Error" not in answer
        if THANKS in answer:
            self.acknowledged.append(user)
        else:
            assert "Something went wrong on our side" in answer, answer
            assert TRY_AGAIN in answer, answer
            self.refused.append(user)
        return answer

    async def stored(self) -> Counter[str]:
        async with self.deps.sessions() as session:
            return Counter((await session.exec(select(ReportRow.reporter_hash))).all())


SqliteRigs = Callable[..., Awaitable[ReportRig]]


@pytest.fixture
async def sqlite_rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SqliteRigs]:
    """Makes a /report rig on ``tmp_path/bot.db``; disposes of its engine afterwards."""
    engines: list[AsyncEngine] = []

    async def make(**engine_options: float) -> ReportRig:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", **engine_options)
        engines.append(engine)
        await migrate.upgrade(engine)
        catalog = catalog_for({"claude": "https://status.claude.com/api/v2/summary.json"})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
        rig = ReportRig(deps, clock)
        assert THANKS in await rig.report("first")  # creates the user-hash salt (a write) now
        return rig

    yield make
    for engine in engines:
        await engine.dispose()


async def test_sqlite_writers_from_other_threads_make_reports_wait_not_fail(
    tmp_path: Path, sqlite_rig: SqliteRigs
) -> None:
    path = tmp_path / "bot.db"
    rig = await sqlite_rig()
    ready = threading.Barrier(3)
    written: list[int] = []
    progress: dict[str, int] = {}

    def writer(name: str) -> None:
        # Another process's writes, as SQLite sees them: its own connection, short transactions.
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.execute("CREATE TABLE IF NOT EXISTS scratch (who TEXT, n INTEGER)")
        ready.wait()
        for count in range(WRITES_PER_THREAD):
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO scratch VALUES (?, ?)", (name, count))
            connection.execute("COMMIT")
            progress[name] = count + 1
        connection.close()
        written.append(WRITES_PER_THREAD)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()
        users = [f"user{i}" for i in range(40 * SCALE)]
        at_start = sum(progress.values())
        await asyncio.gather(*(rig.report(user) for user in users))
        at_end = sum(progress.values())
    finally:
        for thread in threads:
            thread.join()
    assert at_start < at_end  # the other writers really wrote while the reports did
    assert rig.refused == []
    assert sorted(rig.acknowledged) == sorted(["first", *users])
    stored = await rig.stored()
    assert len(stored) == len(rig.acknowledged)
    assert set(stored.values()) == {1}
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT count(*) FROM scratch").fetchone()[0] == sum(written)


async def test_a_lock_held_past_the_busy_timeout_is_a_friendly_try_again(
    tmp_path: Path, sqlite_rig: SqliteRigs, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot.db"
    rig = await sqlite_rig(sqlite_busy_seconds=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # a stuck writer elsewhere holds the write lock
    try:
        with caplog.at_level(logging.ERROR):
            await rig.report("blocked")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert rig.refused == ["blocked"]
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1  # one clear line (and its traceback) per failed command
    assert failures[0].exc_info is not None
    assert "database is locked" in str(failures[0].exc_info[1])
    assert len(await rig.stored()) == 1  # nothing half-written: only "first"
    # The lock is gone: the same user's retry is counted, once.
    assert THANKS in await rig.report("blocked")
    stored = await rig.stored()
    assert len(stored) == 2
    assert set(stored.values()) == {1}


# --- SQLite: disk full -------------------------------------------------------------------------


async def test_a_full_disk_is_a_friendly_error_no_corruption_and_work_resumes(
    tmp_path: Path, sqlite_rig: SqliteRigs, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "bot.db"
    rig = await sqlite_rig()
    engine = rig.deps.sessions.kw["bind"]
    assert isinstance(engine, AsyncEngine)
    with sqlite3.connect(path) as probe:
        pages = probe.execute("PRAGMA page_count").fetchone()[0]
    limit = [pages + 4]  # a few pages of room, then the "disk" is full

    @event.listens_for(engine.sync_engine, "connect")
    def _cap(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.cursor().execute(f"PRAGMA max_page_count={limit[0]:d}")

    await engine.dispose()  # the pooled connections reopen with the cap
    details = "x" * 200
    with caplog.at_level(logging.ERROR):
        for i in range(2000):
            await rig.report(f"user{i}", details)
            clock.advance(seconds=1)
            if len(rig.refused) >= 3:
                break
    assert len(rig.refused) == 3, "the database never filled up"
    full = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(full) == 3  # logged once per refused command, not once per layer
    assert all("database or disk is full" in str(r.exc_info[1]) for r in full if r.exc_info)
    stored = await rig.stored()
    assert len(stored) == len(rig.acknowledged)  # every "thanks" is stored, every refusal is not
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    limit[0] = 1_000_000  # space is back
    await engine.dispose()
    refused = list(rig.refused)
    for user in refused:
        assert THANKS in await rig.report(user, details)
    stored = await rig.stored()
    assert len(stored) == len(rig.acknowledged)
    assert set(stored.values()) == {1}
    await engine.dispose()


@pytest.mark.parametrize("method", ["send", "reply_in_thread"])
async def test_a_delivery_whose_outcome_could_not_be_stored_is_checked_not_lost_or_repeated(
    tmp_path: Path, clock: FakeClock, method: str
) -> None:
    """SQLite variant of the PostgreSQL cut: the platform took the post (or the thread reply),
    then the database refused the "done". Without a restart the delivery must neither stay
    "sending" nor post twice: the check looks where the platform put it (the reply's thread)."""
    path = tmp_path / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_seconds=0.2)
    await migrate.upgrade(engine)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
            catalog, rig = make_rig(engine, server, http, clock)
            async with rig.deps.sessions() as session:
                await catalog_store.sync_catalog(session=session, catalog=catalog)
            channels = ["a", "b", "c"]
            for channel in channels:
                assert "Subscribed" in await rig.say(
                    "subscribe", user=channel, admin=True, service="claude"
                )
            original = getattr(rig.sender, method)

            async def then_lock(*args: Any, **kwargs: Any) -> SentMessage:
                sent: SentMessage = await original(*args, **kwargs)
                if not holder.in_transaction:
                    holder.execute("BEGIN IMMEDIATE")  # another writer: "done" cannot be stored
                return sent

            setattr(rig.sender, method, then_lock)
            clock.now = TIMELINE.started_at - timedelta(minutes=5)
            while not holder.in_transaction:
                await rig.step()
                clock.advance(minutes=1)
                assert clock.now < TIMELINE.updates[-1].posted_at, "nothing was delivered in time"
            setattr(rig.sender, method, original)
            holder.execute("ROLLBACK")
            end = TIMELINE.updates[-1].posted_at + timedelta(minutes=15)
            while clock.now <= end:
                await rig.step()
                clock.advance(minutes=1)
            assert_each_channel_told_once(rig, channels)
            async with rig.deps.sessions() as session:
                statuses = set((await session.exec(select(DeliveryRow.status))).all())
            assert statuses == {"done"}
    finally:
        holder.close()
        await engine.dispose()
