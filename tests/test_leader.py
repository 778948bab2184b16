"""Leader election on PostgreSQL (advisory lock) and the single-process lock on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.runtime.leader import AlreadyRunningError, LeaderElector, single_process
from bot.store.pg_connection import asyncpg_connector
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import bot_env, write_catalog

KEY = 0x7E57_0001  # not the production key: a stray bot on this server cannot interfere


class Electorate:
    """Electors on one database, each recording its connections and its elections."""

    def __init__(self, url: str) -> None:
        self._connect = asyncpg_connector(url)
        self.electors: list[LeaderElector] = []
        self.connections: list[list[Any]] = []
        self.events: list[tuple[int, str]] = []
        self.elected: list[asyncio.Event] = []  # set at each elector's election

    def add(self) -> LeaderElector:
        index = len(self.electors)
        opened: list[Any] = []
        elected = asyncio.Event()

        def on_elected() -> None:
            self.events.append((index, "elected"))
            elected.set()

        async def connect() -> Any:
            connection = await self._connect()
            opened.append(connection)
            return connection

        elector = LeaderElector(
            connect,
            on_elected=on_elected,
            on_deposed=lambda: self.events.append((index, "deposed")),
            key=KEY,
        )
        self.electors.append(elector)
        self.connections.append(opened)
        self.elected.append(elected)
        return elector

    async def close(self) -> None:
        for elector in self.electors:
            await elector.resign()


@pytest.fixture
async def electorate(postgres_url: str) -> AsyncIterator[Electorate]:
    group = Electorate(postgres_url)
    try:
        yield group
    finally:
        await group.close()


async def admin(url: str, sql: str, *args: object) -> Any:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


@pytest.mark.postgres
async def test_exactly_one_of_three_is_elected_and_it_stays_leader(electorate: Electorate) -> None:
    a, b, c = electorate.add(), electorate.add(), electorate.add()
    for _ in range(3):
        assert [await e.step() for e in (a, b, c)] == [True, False, False]
    assert electorate.events == [(0, "elected")]


@pytest.mark.postgres
async def test_a_follower_takes_over_when_the_leader_resigns(electorate: Electorate) -> None:
    a, b = electorate.add(), electorate.add()
    assert await a.step()
    assert not await b.step()
    await a.resign()
    assert await b.step()
    assert not await a.step()  # the old leader now stands by
    assert electorate.events == [(0, "elected"), (0, "deposed"), (1, "elected")]


@pytest.mark.postgres
async def test_a_leader_whose_connection_dies_steps_down_and_another_takes_over(
    electorate: Electorate, postgres_url: str
) -> None:
    a, b = electorate.add(), electorate.add()
    assert await a.step()
    assert not await b.step()
    pid = electorate.connections[0][0].get_server_pid()
    # What a crashed leader, a restarted database or a cut network leaves behind (waits
    # until the backend is gone).
    assert await admin(postgres_url, "SELECT pg_terminate_backend($1, 5000)", pid)
    assert await b.step()
    assert not await a.step()
    # The dead leader learns it on its next round; until then both think they lead (bounded by
    # LEADER_RETRY_SECONDS, and harmless: detection events and deliveries are idempotent).
    assert electorate.events == [(0, "elected"), (1, "elected"), (0, "deposed")]
    assert not await a.step()
    assert len(electorate.connections[0]) == 2  # it reconnected to stand by


@pytest.mark.postgres
async def test_an_unreachable_database_means_no_leader_and_no_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    elector = LeaderElector(
        asyncpg_connector(f"postgresql+asyncpg://postgres@127.0.0.1:{port}/none"),
        on_elected=lambda: pytest.fail("elected without a database"),
        on_deposed=lambda: None,
        key=KEY,
        check_timeout=2,
    )
    with caplog.at_level(logging.WARNING, logger="bot.runtime.leader"):
        assert not await elector.step()
        assert not await elector.step()
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # said once, not every few seconds


@pytest.mark.postgres
async def test_run_resigns_when_stopped(electorate: Electorate) -> None:
    a, b = electorate.add(), electorate.add()
    stop = asyncio.Event()
    task = asyncio.create_task(a.run(stop))
    try:
        # Bounded: a round that fails would retry forever, and the test would hang.
        async with asyncio.timeout(30):
            await electorate.elected[0].wait()
    except TimeoutError:
        task.cancel()
        pytest.fail("run()'s first round did not elect the only elector within 30 s")
    stop.set()
    await task
    assert await b.step()


@pytest.mark.postgres
async def test_a_round_that_fails_frees_the_lock_and_the_election_goes_on(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in a round (here the scheduler refusing to resume) must not leave this process
    holding the lock without polling, nor end its election for good."""
    events: list[str] = []

    def on_elected() -> None:
        events.append("elected")
        if events.count("elected") <= 2:
            raise RuntimeError("the scheduler would not resume")

    elector = LeaderElector(
        asyncpg_connector(postgres_url),
        on_elected=on_elected,
        on_deposed=lambda: events.append("deposed"),
        key=KEY,
        retry_seconds=0.01,
    )
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING, logger="bot.runtime.leader"):
        task = asyncio.create_task(elector.run(stop))
        try:
            async with asyncio.timeout(30):
                while events.count("elected") < 3:
                    await asyncio.sleep(0.01)
        except TimeoutError:
            pytest.fail(f"the election stopped after a failed round: {events}, {task}")
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
    # Each re-election is a new session taking the lock: the failed one had freed it.
    assert events[:6] == ["elected", "deposed", "elected", "deposed", "elected", "deposed"]
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1  # once, not every round
    assert "failed unexpectedly" in tracebacks[0].getMessage()


def test_a_second_holder_of_the_sqlite_lock_is_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    refused = pytest.raises(AlreadyRunningError, match=r"already running with .*bot\.db")
    with single_process(url), refused, single_process(url):
        pytest.fail("two holders")
    with single_process(url):  # released on exit
        pass
    with single_process("sqlite+aiosqlite:///:memory:"), single_process("postgresql://x/y"):
        pass  # nothing to lock


async def _start(tmp_path: Path, catalog: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=bot_env(tmp_path, catalog, CONSOLE="off", LOG_LEVEL="INFO"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _wait_for_line(process: asyncio.subprocess.Process, pattern: str) -> None:
    assert process.stderr is not None
    seen = []
    while line := (await process.stderr.readline()).decode():
        seen.append(line)
        if re.search(pattern, line):
            return
    raise AssertionError(f"never logged {pattern!r}:\n{''.join(seen)}")


@pytest.mark.slow
async def test_a_second_bot_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json(SUMMARY_PATH, {"page": {"id": "x"}, "components": [], "incidents": []})
        catalog = write_catalog(tmp_path / "catalog.toml", {"iterable": server.url(SUMMARY_PATH)})
        first = await _start(tmp_path, catalog)
        try:
            await asyncio.wait_for(_wait_for_line(first, r"web server on http"), 60)
            second = await _start(tmp_path, catalog)
            _, err = await asyncio.wait_for(second.communicate(), 60)
            message = err.decode()
            assert second.returncode == 2, message
            assert f"(pid {first.pid}) is already running" in message
            assert "PostgreSQL" in message
            assert "Traceback" not in message
            first.send_signal(signal.SIGKILL)  # the kernel frees the lock; no stale file blocks
            await first.wait()
            third = await _start(tmp_path, catalog)
            try:
                await asyncio.wait_for(_wait_for_line(third, r"web server on http"), 60)
            finally:
                third.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(third.wait(), 30) == 0
        finally:
            with contextlib.suppress(ProcessLookupError):
                first.kill()
