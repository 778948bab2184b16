"""What the log says while the database is away: one line per loop when it goes, one when it
is back, no traceback for the known condition; a genuine bug keeps its traceback.

The PostgreSQL outage goes through a TCP proxy on loopback (never the shared server); the
SQLite one is a write lock held past the busy timeout by another connection. Every loop of the
app runs against the real database: polling, crowd watch (tick and nudge), the outbox worker,
reminders and the custom-service refresh, each as the app builds it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.worker import OutboxWorker
from bot.services.crowd_watch import CrowdWatch
from bot.services.custom_services import CustomServices, follow_database
from bot.services.reminders import Reminders
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, parse_timeline, summary_at
from bot.store import alert_store, catalog_store, migrate
from bot.store.availability import describe, is_database_unavailable, unavailability_cause
from bot.store.engine import create_engine, session_factory
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.fakes.tcp_proxy import TcpProxy
from tests.helpers import catalog_for, settle

TIMELINE = parse_timeline(
    (
        FIXTURES / "timelines" / "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
    ).read_text()
)
# The loops of the app: what each calls its work in the outage lines, and its logger.
LOOPS = {
    "polling": "bot.sources.poller",
    "crowd watch": "bot.services.crowd_watch",
    "outbox deliveries": "bot.delivery.worker",
    "reminders": "bot.services.reminders",
    "following custom services": "bot.services.custom_services",
}
DOWN, BACK = "database unavailable: ", "database back: "


class SteppedRefresh:
    """Custom services whose refresh waits for the test: the app's loop runs one per `step`."""

    def __init__(self, real: CustomServices) -> None:
        self._real = real
        self._go: asyncio.Queue[None] = asyncio.Queue()
        self._done: asyncio.Queue[None] = asyncio.Queue()

    async def refresh(self) -> tuple[list[str], list[str]]:
        await self._go.get()
        try:
            return await self._real.refresh()
        finally:
            self._done.put_nowait(None)

    async def step(self) -> None:
        self._go.put_nowait(None)
        await self._done.get()


@dataclass
class Loops:
    """Every database loop of the app, each run one round at a time."""

    server: FakeStatusServer
    poller: StatusPoller
    watch: CrowdWatch
    worker: OutboxWorker
    remind: Callable[[], Awaitable[None]]
    custom: SteppedRefresh
    clock: FakeClock

    async def minute(self) -> None:
        """One minute of the bot: every loop runs once, and a /report nudges the crowd watch."""
        self.server.set_json(SUMMARY_PATH, summary_at(TIMELINE, self.clock.now))
        self.server.set_json("/api/v2/incidents.json", incidents_at(TIMELINE, self.clock.now))
        await self.poller.poll_all()
        await self.watch.tick()
        self.watch.nudge("claude")
        await settle(self.watch)
        await self.worker.run_round()
        await self.remind()
        await self.custom.step()
        self.clock.advance(minutes=1)


@contextlib.asynccontextmanager
async def app_loops(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Loops]:
    """The app's loops on ``engine``, built as bot/app.py builds them."""
    async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
        catalog = catalog_for({"claude": server.url(SUMMARY_PATH)})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        fetcher = HttpFetcher(http, timeout=5)
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=fetcher,
            prober=HttpProber(http),
            clock=clock,
            record_events=lambda s, e, n: alert_store.record_alert_events(
                session=s, events=e, now=n
            ),
        )

        async def no_wait(_seconds: float) -> None:
            return None

        watch = CrowdWatch(
            sessions=sessions, catalog=catalog, clock=clock, nudge_delay=0, sleep=no_wait
        )
        worker = OutboxWorker(
            sessions=sessions, senders={"test": RecordingSender()}, catalog=catalog, clock=clock
        )
        custom = SteppedRefresh(
            CustomServices(
                catalog=catalog,
                sessions=sessions,
                fetcher=fetcher,
                poller=poller,
                clock=clock,
            )
        )
        (reminders,) = Reminders(sessions=sessions, clock=clock, every=timedelta(hours=1)).jobs()
        stop = asyncio.Event()
        refreshing = asyncio.create_task(
            follow_database(custom, stop, clock=clock, every_seconds=0)
        )
        try:
            yield Loops(server, poller, watch, worker, reminders.run, custom, clock)
        finally:
            stop.set()
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing


def bot_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.split(".")[0] == "bot"]


def lines_of(records: list[logging.LogRecord], prefix: str) -> dict[str, int]:
    """How many lines starting with ``prefix`` each loop wrote, by its work's name."""
    counts = dict.fromkeys(LOOPS, 0)
    for record in records:
        for work, logger in LOOPS.items():
            if record.name == logger and record.getMessage().startswith(f"{prefix}{work} "):
                counts[work] += 1
    return counts


def assert_quiet_outage(during: list[logging.LogRecord], after: list[logging.LogRecord]) -> None:
    # Every loop failed, and said so once, at WARNING, without a traceback.
    assert lines_of(during, DOWN) == dict.fromkeys(LOOPS, 1), [r.getMessage() for r in during]
    assert [r for r in during if r.exc_info is not None] == []
    assert [r for r in during if r.levelno >= logging.ERROR] == []
    # Back: one line per loop, naming how long it lasted; nothing more about the outage.
    assert lines_of(after, BACK) == dict.fromkeys(LOOPS, 1), [r.getMessage() for r in after]
    assert lines_of(after, DOWN) == dict.fromkeys(LOOPS, 0)
    assert [r for r in after if r.exc_info is not None] == []
    for record in during + after:
        if record.getMessage().startswith((DOWN, BACK)):
            assert record.levelno == logging.WARNING
            assert "\n" not in record.getMessage()


OUTAGE_MINUTES = 3


async def run_outage(
    loops: Loops,
    caplog: pytest.LogCaptureFixture,
    *,
    cut: Callable[[], Awaitable[None]],
    resume: Callable[[], Awaitable[None]],
) -> tuple[list[logging.LogRecord], list[logging.LogRecord]]:
    """Two healthy minutes, the outage, two minutes after: the records during and after it."""
    loops.clock.now = TIMELINE.started_at - timedelta(minutes=2)
    for _ in range(2):
        await loops.minute()
    assert [r for r in bot_records(caplog) if r.levelno >= logging.WARNING] == []
    caplog.clear()
    await cut()
    for _ in range(OUTAGE_MINUTES):
        await loops.minute()
    during = bot_records(caplog)
    caplog.clear()
    await resume()
    for _ in range(2):
        await loops.minute()
    return during, bot_records(caplog)


@pytest.mark.postgres
async def test_postgres_going_away_is_one_line_per_loop_and_one_when_back(
    pg_engine: AsyncEngine, postgres_url: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    real = make_url(postgres_url)
    async with TcpProxy(real.host or "127.0.0.1", real.port or 5432) as proxy:
        proxied = real.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        engine = create_engine(proxied)
        try:
            async with app_loops(engine, clock) as loops:
                during, after = await run_outage(loops, caplog, cut=proxy.cut, resume=proxy.resume)
        finally:
            await engine.dispose()
    assert proxy.dropped > 0  # pooled connections really were cut, not only new ones refused
    assert_quiet_outage(during, after)
    down = [r.getMessage() for r in during if r.getMessage().startswith(DOWN)]
    assert all("(ConnectionRefusedError: " in m for m in down), down  # no SQL, no traceback
    back = [r.getMessage() for r in after if r.getMessage().startswith(BACK)]
    assert all(f"resumed after {OUTAGE_MINUTES} min (" in m for m in back), back


async def test_a_sqlite_lock_past_the_busy_timeout_is_one_line_per_loop(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    path = tmp_path / "bot.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_seconds=0.05)
    await migrate.upgrade(engine)
    holders: list[sqlite3.Connection] = []

    async def lock() -> None:
        await engine.dispose()  # an open WAL connection holds a shared lock on the file
        holder = sqlite3.connect(path, isolation_level=None, timeout=2)
        holders.append(holder)
        # Every loop must fail, reads included: an exclusive lock keeps even WAL readers out.
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")

    async def unlock() -> None:
        holders.pop().close()  # in WAL mode the exclusive locking mode ends only with it

    try:
        async with app_loops(engine, clock) as loops:
            during, after = await run_outage(loops, caplog, cut=lock, resume=unlock)
    finally:
        for holder in holders:
            holder.close()
        await engine.dispose()
    assert_quiet_outage(during, after)
    down = [r.getMessage() for r in during if r.getMessage().startswith(DOWN)]
    assert all("database is locked" in m for m in down), down


async def test_a_bug_is_still_logged_with_its_traceback_every_time(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await migrate.upgrade(engine)
    try:
        async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
            server.set_json(SUMMARY_PATH, summary_at(TIMELINE, TIMELINE.started_at))
            poller = StatusPoller(
                # Never synced to the database: the poll has no row to store into (a bug).
                catalog=catalog_for({"claude": server.url(SUMMARY_PATH)}),
                sessions=session_factory(engine),
                fetcher=HttpFetcher(http, timeout=5),
                prober=HttpProber(http),
                clock=clock,
            )
            with caplog.at_level(logging.INFO):
                for _ in range(2):
                    await poller.poll_all()
                    clock.advance(minutes=1)
    finally:
        await engine.dispose()
    failures = [r for r in bot_records(caplog) if r.levelno >= logging.WARNING]
    assert len(failures) == 2  # a bug is told every time: it will not go away by itself
    for record in failures:
        assert record.levelno == logging.ERROR
        assert "polling http://127.0.0.1" in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], LookupError)
    assert not any(r.getMessage().startswith((DOWN, BACK)) for r in bot_records(caplog))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connecting to it is refused


async def caught(engine: AsyncEngine, sql: str) -> BaseException:
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    except Exception as exc:
        return exc
    raise AssertionError(f"{sql!r} did not fail")


async def test_the_classifier_on_real_driver_errors(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    sqlite_engine = create_engine(f"sqlite+aiosqlite:///{path}", sqlite_busy_seconds=0.05)
    refused_engine = create_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none")
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x TEXT)")
        holder.execute("BEGIN IMMEDIATE")
        locked = await caught(sqlite_engine, "INSERT INTO t VALUES ('x')")
        holder.execute("ROLLBACK")
        typo = await caught(sqlite_engine, "SELECT * FROM no_such_table")
        refused = await caught(refused_engine, "SELECT 1")
    finally:
        holder.close()
        await sqlite_engine.dispose()
        await refused_engine.dispose()

    assert is_database_unavailable(locked)
    assert describe(locked) == "OperationalError: database is locked"
    assert is_database_unavailable(refused)
    assert isinstance(unavailability_cause(refused), ConnectionRefusedError)
    assert not is_database_unavailable(typo)  # a query that is wrong is a bug, not an outage

    # A bug raised while handling an outage is still a bug (only explicit causes count).
    try:
        try:
            raise refused
        except Exception:
            {}["missing"]
    except KeyError as exc:
        bug = exc
    assert bug.__context__ is refused
    assert not is_database_unavailable(bug)
    # Wrapped on purpose (`raise … from`), the outage shows through.
    wrapped = RuntimeError("store failed")
    wrapped.__cause__ = locked
    assert is_database_unavailable(wrapped)
