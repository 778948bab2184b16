"""Several real processes on one PostgreSQL database.

- 2 and 3 `outagebot run` processes: exactly one polls the (fake) status page; SIGKILL it and
  another takes over within 10 s; each incident is announced once per channel, none is missed.
- 3 delivery workers draining 5,000 deliveries, one of them SIGKILLed mid-way: each channel gets
  its message exactly once.

Which process sent a request is read from /proc (the client port's socket belongs to one
process), so "exactly one polls" is observed, not taken from a log line. Waits are bounded
wait-for-condition loops on the real clock: these are separate processes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func
from sqlmodel import select

from bot.sources.catalog import load_catalog
from bot.store import catalog_store, migrate
from bot.store.engine import create_engine, session_factory
from bot.store.models import AlertMessageRow, DeliveryRow, SubscriptionRow
from tests.conftest import FIXTURES, REPO, empty_tables
from tests.fakes.chat_platform import FakeChatPlatform
from tests.fakes.outbox_child import seed
from tests.fakes.slack_server import TEAM_ID, FakeSlack
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import bot_env, write_catalog

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

INCIDENTS_PATH = "/api/v2/incidents.json"
GITHUB = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_github_2022-11-25_incident.json").read_text()
)
# One service per incident: a second incident in a channel within minutes joins the first's
# message as a digest, and this test counts posts.
CHANNELS = {"github": ("C1", "C2", "C3"), "second": ("D1", "D2", "D3")}
SECOND = "/second"


def page(*open_incidents: str) -> dict[str, Any]:
    """The GitHub page, calm, or with these major incidents open (ids double as names)."""
    summary = copy.deepcopy(GITHUB)
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    template = GITHUB["incidents"][0]
    summary["incidents"] = []
    for incident_id in open_incidents:
        update = copy.deepcopy(template["incident_updates"][-1])
        update |= {"id": f"{incident_id}-u1", "incident_id": incident_id, "created_at": now}
        update |= {"status": "investigating", "display_at": now, "updated_at": now}
        incident = copy.deepcopy(template) | {"id": incident_id, "name": f"Outage {incident_id}"}
        incident |= {"created_at": now, "started_at": now, "updated_at": now}
        incident["incident_updates"] = [update]
        summary["incidents"].append(incident)
    if open_incidents:
        summary["status"] = {"indicator": "major", "description": "Major Service Outage"}
    else:
        summary["status"] = {"indicator": "none", "description": "All Systems Operational"}
        for component in summary["components"]:
            component["status"] = "operational"
    return summary


def owner_of_client_port(port: int, pids: Iterable[int]) -> int | None:
    """The process (among `pids`) whose socket has local port `port` on this machine."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return pid
    return None


class WatchedStatusServer(FakeStatusServer):
    """A fake status page that notes which of the bot processes sent each request."""

    def __init__(self) -> None:
        super().__init__()
        self.pids: list[int] = []
        self.pollers: list[tuple[float, int | None]] = []

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            self.pollers.append((time.monotonic(), owner_of_client_port(peer[1], self.pids)))
        return await super()._handle(request)

    def set_page(self, summary: dict[str, Any], prefix: str = "") -> None:
        self.set_json(prefix + SUMMARY_PATH, summary)
        incidents = {"page": summary["page"], "incidents": summary["incidents"]}
        self.set_json(prefix + INCIDENTS_PATH, incidents)

    def pollers_since(self, moment: float) -> collections.Counter[int | None]:
        return collections.Counter(pid for at, pid in self.pollers if at >= moment)


async def until(condition: Callable[[], bool], limit: float, what: str) -> float:
    """Wait until `condition` holds (checked every 50 ms), at most `limit` s; returns the wait."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            raise AssertionError(f"{what}: not within {limit} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def bots(count: int, env: dict[str, str], cwd: Path) -> AsyncIterator[list[Any]]:
    processes = []
    for index in range(count):
        with open(cwd / f"bot{index}.log", "wb") as log:  # read when a test fails
            processes.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "bot",
                    "run",
                    cwd=cwd,
                    env=env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                )
            )
    try:
        yield processes
    except AssertionError as failure:
        # CI shows only the test's output: what each process logged is the way to tell a
        # process that never stood for election from one that was elected and did not poll.
        tails = "\n".join(
            f"--- bot{index}.log (pid {process.pid}), last lines:\n"
            + "\n".join((cwd / f"bot{index}.log").read_text(errors="replace").splitlines()[-40:])
            for index, process in enumerate(processes)
        )
        raise AssertionError(f"{failure}\n{tails}") from failure
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 30)
            if process.returncode is None:
                process.kill()
                await process.wait()


@pytest.fixture
async def database(postgres_url: str) -> AsyncIterator[str]:
    """The run's PostgreSQL database, migrated and emptied before and after: it is shared by the
    whole run, and the 5,000 channels seeded here must not show up in a later test."""
    engine = create_engine(postgres_url)
    try:
        await migrate.upgrade(engine)
        await empty_tables(engine)
        yield postgres_url
        await empty_tables(engine)
    finally:
        await engine.dispose()


async def prepare(database_url: str, catalog_path: Path) -> None:
    """Migrate, load the catalog and subscribe three Slack channels, before any bot starts."""
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        now = datetime.now(UTC)
        async with session_factory(engine)() as session:
            await catalog_store.sync_catalog(session=session, catalog=load_catalog(catalog_path))
            session.add_all(
                SubscriptionRow(
                    platform="slack",
                    community_id=TEAM_ID,
                    channel_id=channel,
                    service_id=service,
                    created_at=now,
                )
                for service, channels in CHANNELS.items()
                for channel in channels
            )
            await session.commit()
    finally:
        await engine.dispose()


def announced(slack: FakeSlack) -> collections.Counter[tuple[str, str]]:
    """Top-level alert posts per (channel, incident)."""
    posts: collections.Counter[tuple[str, str]] = collections.Counter()
    for message in slack.messages:
        if message.thread_ts is None:
            incident = next((i for i in ("incA", "incB") if i in message.text), "?")
            posts[(message.channel, incident)] += 1
    return posts


@pytest.mark.parametrize("processes", [2, 3])
async def test_one_poller_among_many_and_a_takeover_within_10_s_after_kill_9(
    tmp_path: Path, database: str, processes: int
) -> None:
    async with WatchedStatusServer() as status, FakeSlack() as slack:
        status.set_page(page())
        status.set_page(page(), SECOND)
        urls = {"github": status.url(SUMMARY_PATH), "second": status.url(SECOND + SUMMARY_PATH)}
        catalog = write_catalog(tmp_path / "catalog.toml", urls)
        await prepare(database, catalog)
        env = bot_env(
            tmp_path,
            catalog,
            DATABASE_URL=database,
            CONSOLE="off",
            LOG_LEVEL="INFO",
            POLL_INTERVAL_SECONDS="1",
            LEADER_RETRY_SECONDS="0.5",
            SLACK_BOT_TOKEN="xoxb-test-token",
            SLACK_SIGNING_SECRET="signing-secret-for-tests",
            SLACK_API_URL=slack.api_url,
        )
        async with bots(processes, env, tmp_path) as running:
            status.pids = [p.pid for p in running]
            await until(lambda: len(status.pollers) >= 1, 60, "first poll")
            start = time.monotonic()
            await until(lambda: sum(status.pollers_since(start).values()) >= 12, 30, "polls")
            pollers = status.pollers_since(start)
            assert len(pollers) == 1, f"more than one process polls: {pollers}"
            (leader,) = pollers
            assert leader in status.pids

            status.set_page(page("incA"))
            everywhere_a = {(c, "incA") for c in CHANNELS["github"]}
            await until(lambda: everywhere_a <= set(announced(slack)), 30, "incident A posted")

            victim = next(p for p in running if p.pid == leader)
            victim.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            survivors = [pid for pid in status.pids if pid != leader]

            def new_leader_polls() -> bool:
                return any(pid in survivors for pid in status.pollers_since(killed))

            takeover = await until(new_leader_polls, 10, "takeover after SIGKILL")
            status.set_page(page("incB"), SECOND)  # a new incident while the new leader polls
            everywhere_b = {(c, "incB") for c in CHANNELS["second"]}
            await until(lambda: everywhere_b <= set(announced(slack)), 30, "incident B posted")
            after = time.monotonic()
            await until(lambda: sum(status.pollers_since(after).values()) >= 12, 30, "polls")
            pollers = status.pollers_since(after)
            assert len(pollers) == 1, f"after the takeover more than one polls: {pollers}"
            assert next(iter(pollers)) in survivors

        posts = announced(slack)
        assert set(posts) == everywhere_a | everywhere_b, posts  # none missed
        assert set(posts.values()) == {1}, f"an incident was announced twice: {posts}"
        print(f"{processes} processes: takeover {takeover:.2f} s after SIGKILL")
        assert takeover < 10


# ~170 s on a loaded machine: well past the default per-test timeout of pyproject.toml.
@pytest.mark.timeout(900)
async def test_three_workers_share_5000_deliveries_exactly_once_even_when_one_is_killed(
    database: str,
) -> None:
    postgres_url = database
    channels = 5000
    assert await seed(postgres_url, channels) == channels
    async with FakeChatPlatform() as platform:
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fakes.outbox_child",
                postgres_url,
                platform.url,
                cwd=REPO,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        await asyncio.wait_for(platform.wait_for_requests(1500), 120)
        workers[0].send_signal(signal.SIGKILL)  # mid-drain, holding claimed and sending rows
        results = [await asyncio.wait_for(w.communicate(), 180) for w in workers]
        assert workers[0].returncode == -signal.SIGKILL
        for worker, (out, err) in zip(workers[1:], results[1:], strict=True):
            assert worker.returncode == 0, err.decode()
            assert "Traceback" not in err.decode()
            assert int(out.decode()) > 0, "a surviving worker did no work"
        posts = platform.posts_per_channel()
    assert len(posts) == channels, f"channels without a post: {channels - len(posts)}"
    assert set(posts.values()) == {1}, "a channel got its alert twice"
    engine = create_engine(postgres_url)
    try:
        async with session_factory(engine)() as session:
            statuses = dict(
                (
                    await session.exec(
                        select(DeliveryRow.status, func.count()).group_by(DeliveryRow.status)
                    )
                ).all()
            )
            recorded = (await session.exec(select(func.count()).select_from(AlertMessageRow))).one()
    finally:
        await engine.dispose()
    assert statuses == {"done": channels}
    assert recorded == channels
