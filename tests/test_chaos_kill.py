"""kill -9 at random points of polling, detection, report ingestion, the crowd watch and the
fan-out, again and again; the final state must equal that of a run nobody killed.

The bot runs as a process (tests/fakes/kill_child.py: the real `open_app` graph, senders, outbox
worker and crowd watch) through a scripted outage: two status pages replay real incidents
(Anthropic's, OpenAI's), members of five communities on Discord and Slack `/report` problems
before OpenAI's page admits them, and every alert goes to 10 channels. Time is virtual: each
round is two virtual minutes, whatever the wall clock says. The first run is never killed; the
second is killed at points spread over every phase, restarted each time, and must end with the
same messages on both fake platforms and the same rows in the database.

50 × ``CHAOS_SCALE`` kills per database (``make chaos``: 500), or ``CHAOS_KILLS``;
``CHAOS_SEED`` picks the points. The figures of a run print with ``pytest -s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.core import crowd
from bot.core.crowd_codec import encode_crowd_memory
from bot.sources.catalog import load_catalog
from bot.store import catalog_store, migrate, subscription_store
from bot.store.community_models import InstanceSecretRow
from bot.store.crowd_models import CrowdMemoryRow
from bot.store.engine import create_engine, is_sqlite, session_factory
from bot.store.pg_connection import asyncpg_connector
from bot.store.subscription_store import Scope
from bot.store.user_hash import SALT_NAME
from tests.conftest import REPO, empty_tables
from tests.fakes.discord_server import FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.fakes.timeline_server import TimelineServer, shifted
from tests.helpers import ANTHROPIC_TIMELINE, OPENAI_TIMELINE, real_timeline, write_catalog

ANTHROPIC = real_timeline(ANTHROPIC_TIMELINE)
OPENAI = real_timeline(OPENAI_TIMELINE)
SCALE = float(os.environ.get("CHAOS_SCALE", "1"))
SEED = int(os.environ.get("CHAOS_SEED", "5"))
KILLS = int(os.environ.get("CHAOS_KILLS", str(max(5, int(50 * SCALE)))))
ROUND = timedelta(minutes=2)
START = ANTHROPIC.started_at - timedelta(minutes=6)
OPENAI_SHIFT = START + timedelta(minutes=50) - OPENAI.started_at
SALT = "5a" * 32
GUILDS = ("700000000000000001", "700000000000000002", "700000000000000003")
TEAMS = ("TKILL1", "TKILL2")
PHASES = ("poll", "detect", "report", "crowd", "fanout")
CHILD_TIMEOUT = 120.0

# What a killed run may legitimately do differently: ids, and bookkeeping of the attempts.
IGNORED = {
    "*": {"id"},
    "deliveries": {"attempts", "last_error", "claimed_by", "updated_at"},
    "crowd_memories": {"last_report_id"},  # a report row id: see foreign keys below
}
# A delivery's key names its alert's row id (action:alert:subscription:...): see foreign keys.
_ALERT_IN_KEY = re.compile(r'"(\w+):\d+:')
_KEY_HASH = re.compile(r"ref [0-9a-f]{10}")  # Discord's nonce and "ref" footer hash the key


PAGES = {"alpha": ANTHROPIC, "beta": shifted(OPENAI, OPENAI_SHIFT)}


def round_times() -> list[datetime]:
    """A round every two minutes while something happens; the quiet hour before Anthropic's
    postmortem is skipped (nothing is due in it, and it would only cost time)."""
    resolved = ANTHROPIC.updates[-2].posted_at
    postmortem = ANTHROPIC.updates[-1].posted_at
    busy = int((resolved + ROUND * 4 - START) / ROUND)
    return [START + ROUND * i for i in range(busy)] + [postmortem + ROUND * i for i in range(-1, 3)]


def planned_reports() -> list[list[object]]:
    """Who reports what when: beta's users notice 20 minutes before its page says anything."""
    communities = [("discord", g) for g in GUILDS] + [("slack", t) for t in TEAMS]
    plan: list[list[object]] = []
    person = 0
    for round_ in range(15, 25):  # beta: 40 people in five communities
        for _ in range(4):
            platform, community = communities[person % len(communities)]
            plan.append([round_, platform, community, f"{200_000 + person}", "beta"])
            person += 1
    for round_ in range(4, 12):  # alpha: a few, during its incident
        for _ in range(2):
            platform, community = communities[person % len(communities)]
            plan.append([round_, platform, community, f"{200_000 + person}", "alpha"])
            person += 1
    return plan


@dataclass
class Platforms:
    discord: FakeDiscord
    slack: FakeSlack

    @property
    def requests(self) -> int:
        return len(self.discord.calls) + len(self.slack.calls)


@contextlib.asynccontextmanager
async def platforms() -> AsyncIterator[Platforms]:
    async with FakeDiscord(guild_ids=GUILDS) as discord, FakeSlack() as slack:
        for channel_id, guild_id in discord_channels().items():
            discord.add_channel(guild_id, channel_id)
        yield Platforms(discord, slack)


def discord_channels() -> dict[str, str]:
    return {str(710000000000000000 + i): GUILDS[i % len(GUILDS)] for i in range(6)}


def slack_channels() -> dict[str, str]:
    return {f"CKILL{i:03d}": TEAMS[i % len(TEAMS)] for i in range(4)}


async def seed(database_url: str, catalog_path: Path) -> None:
    """A migrated database with the salt, the subscriptions and a week of quiet report history."""
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        if not is_sqlite(database_url):
            await empty_tables(engine)
        config = crowd.CrowdConfig()
        week = [(START - timedelta(hours=h), 1) for h in range(24 * 7, 0, -1)]
        memory = encode_crowd_memory(crowd.learn_history(crowd.CrowdMemory(), week, config=config))
        places = [(Scope("discord", g), c) for c, g in discord_channels().items()]
        places += [(Scope("slack", t), c) for c, t in slack_channels().items()]
        async with session_factory(engine)() as session:
            await catalog_store.sync_catalog(session=session, catalog=load_catalog(catalog_path))
            session.add(InstanceSecretRow(name=SALT_NAME, value=SALT, created_at=START))
            for service_id in PAGES:
                session.add(CrowdMemoryRow(service_id=service_id, memory=memory, updated_at=START))
                for scope, channel_id in places:
                    await subscription_store.upsert_subscription(
                        session=session,
                        scope=scope,
                        channel_id=channel_id,
                        service_id=service_id,
                        components=(),
                        min_severity="minor",
                        mention_role=None,
                        early_warnings=True,
                        maintenance=True,
                        now=START,
                    )
            await session.commit()
    finally:
        await engine.dispose()


@dataclass
class Run:
    """One run of the scenario, killed or not, and what it showed on the way."""

    workdir: Path
    markers: list[tuple[str, int]] = field(default_factory=list)
    """Each marker with the number of platform requests made when it came."""
    kills: Counter[str] = field(default_factory=Counter)
    starts: int = 0
    stored_before_kill: int = 0
    seconds: float = 0.0


def marker_key(marker: str) -> tuple[int, int]:
    """Where a marker falls in the scenario: (round, order within the round)."""
    words = marker.split()
    order = {"poll": 0, "detect": 1, "crowd": 10_000, "fanout": 10_001}
    if words[0] == "report":
        return int(words[1]), 1 + int(words[2])
    return int(words[1]), order[words[0]]


@dataclass(frozen=True, slots=True)
class KillPoint:
    marker: str
    """Kill at the first marker at or after this one ..."""
    fraction: float
    """... this far into its step: of 30 ms, or of the requests the clean run's fan-out made."""
    requests: int = 0


class BotForks:
    """tests/fakes/kill_child.py, forking one bot per start; its output, line by line."""

    def __init__(self, stderr: Path) -> None:
        self._process: asyncio.subprocess.Process | None = None
        self._stderr = stderr
        self._stderr_file: BinaryIO | None = None
        self._pending: asyncio.Task[bytes] | None = None

    async def __aenter__(self) -> BotForks:
        self._stderr_file = self._stderr.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.fakes.kill_child",
            cwd=REPO,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._stderr_file,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.close()
        await asyncio.wait_for(self._process.wait(), CHILD_TIMEOUT)
        assert self._stderr_file is not None
        self._stderr_file.close()

    async def start(self, workdir: Path) -> int:
        """Fork a bot for ``workdir``; its pid."""
        assert self._process is not None
        assert self._process.stdin is not None
        self._process.stdin.write(f"{workdir}\n".encode())
        await self._process.stdin.drain()
        first = await self.line()
        assert first.startswith("pid "), first
        return int(first.split()[1])

    def _next(self) -> asyncio.Task[bytes]:
        if self._pending is None:
            assert self._process is not None
            assert self._process.stdout is not None
            self._pending = asyncio.create_task(self._process.stdout.readline())
        return self._pending

    def has_line(self) -> bool:
        """Whether the next line is there to read without waiting."""
        return self._next().done()

    async def line(self) -> str:
        task = self._next()
        done, _ = await asyncio.wait({task}, timeout=CHILD_TIMEOUT)
        assert done, f"no word from the bot in {CHILD_TIMEOUT:.0f} s"
        self._pending = None
        line = task.result()
        assert line, "the forking process ended:\n" + self.stderr()
        return line.decode().strip()

    def stderr(self) -> str:
        """What the bots wrote to stderr so far (the last 4,000 characters)."""
        return self._stderr.read_text(errors="replace")[-4000:]


async def run_scenario(
    run: Run, plat: Platforms, plan: dict[str, Any], points: list[KillPoint]
) -> None:
    """Start bots until one finishes, killing each at the next of ``points``."""
    (run.workdir / "plan.json").write_text(json.dumps(plan))
    todo = list(points)
    ours = await _sessions(plan["database_url"])
    async with BotForks(run.workdir / "stderr.log") as forks:
        while True:
            run.starts += 1
            pid = await forks.start(run.workdir)
            phase = await _until_kill(forks, run, plat, todo[0] if todo else None)
            if isinstance(phase, str):
                os.kill(pid, signal.SIGKILL)  # no goodbye, no cleanup: that is the test
                code = await _exit_code(forks, run)
            else:
                code = phase
            if isinstance(phase, str) and code == -signal.SIGKILL:
                run.kills[phase] += 1
                todo.pop(0)
                await _dead_sessions_gone(plan["database_url"], ours)
                continue
            assert code == 0, f"a bot failed (exit {code}):\n{forks.stderr()}"
            assert run.markers[-1][0] == "done"
            assert not todo, f"{len(todo)} kill points were never reached"
            break
    assert "Traceback" not in (run.workdir / "stderr.log").read_text(), forks.stderr()


async def _sessions(database_url: str) -> set[int] | None:
    """The server processes of everyone connected to the database (None: SQLite)."""
    if is_sqlite(database_url):
        return None
    connection = await asyncpg_connector(database_url)()
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await connection.close()
    return {row["pid"] for row in rows}


async def _dead_sessions_gone(database_url: str, ours: set[int] | None) -> None:
    """Wait until PostgreSQL has ended the killed bot's sessions (``ours`` are the test's own).

    A COMMIT the bot sent just before the kill may still be landing; a bot restarted within
    milliseconds (forks are that fast) would not see it yet, where a real restart takes seconds.
    SQLite's writes are the process's own: they stop with it.
    """
    for _ in range(1000):
        current = await _sessions(database_url)
        if current is None or ours is None or current <= ours:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"sessions of a killed bot still open after 10 s: {current - ours}")


async def _exit_code(forks: BotForks, run: Run) -> int:
    while True:
        line = await forks.line()
        if line.startswith("exit "):
            return int(line.split()[1])
        _note(line, run, None)


def _note(line: str, run: Run, plat: Platforms | None) -> None:
    if line == "report-already-stored":
        run.stored_before_kill += 1
    else:
        run.markers.append((line, plat.requests if plat else -1))


async def _until_kill(
    forks: BotForks, run: Run, plat: Platforms, point: KillPoint | None
) -> str | int:
    """Follow the markers to the kill point, wait its random part, return the phase the bot is
    in; its exit code if it ended first."""
    while True:
        line = await forks.line()
        if line.startswith("exit "):
            return int(line.split()[1])
        _note(line, run, plat)
        if point is None or line in ("done", "report-already-stored"):
            continue
        if marker_key(line) < marker_key(point.marker):
            continue
        phase = line.split()[0]
        if phase != "fanout":
            await asyncio.sleep(point.fraction * 0.03)  # a moment inside the step, or past it
            return phase
        goal = plat.requests + max(1, int(point.fraction * point.requests))
        while plat.requests < goal and not forks.has_line():
            await asyncio.sleep(0.0005)
        if forks.has_line():  # the fan-out ended first: kill in whatever came next
            after = await forks.line()
            if after.startswith("exit "):
                return int(after.split()[1])
            _note(after, run, plat)
            return after.split()[0]
        return phase


def kill_points(clean: Run, count: int, rng: random.Random) -> list[KillPoint]:
    """``count`` points, spread evenly over the phases, at markers of the clean run (fan-outs
    only where the clean run sent something)."""
    markers = [m for m in clean.markers if m[0] != "done"]
    sent = {
        name: after[1] - requests
        for (name, requests), after in zip(markers, [*markers[1:], markers[-1]], strict=True)
    }
    by_phase = {
        phase: [m for m, _ in markers if m.split()[0] == phase and (phase != "fanout" or sent[m])]
        for phase in PHASES
    }
    chosen = []
    for i in range(count):
        name = rng.choice(by_phase[PHASES[i % len(PHASES)]])
        chosen.append(KillPoint(name, rng.random(), sent[name]))
    return sorted(chosen, key=lambda point: marker_key(point.marker))


async def final_state(database_url: str, plat: Platforms) -> dict[str, Any]:
    """Everything that must not depend on kills: the stored rows and the posted messages, with
    every platform message id replaced by its place (channel and position)."""
    known = [*discord_channels(), *GUILDS]
    places = {i: i for i in known} | _discord_places(plat.discord) | _slack_places(plat.slack)
    engine = create_engine(database_url)
    tables: dict[str, list[str]] = {}
    try:
        async with engine.connect() as connection:
            for table in SQLModel.metadata.sorted_tables:
                skip = IGNORED["*"] | IGNORED.get(table.name, set())
                # Integer links to other rows' ids differ where PostgreSQL's sequences skipped
                # the numbers of transactions a kill cut short; the rows' own keys remain.
                columns = [c for c in table.columns if c.name not in skip and not c.foreign_keys]
                query = table.select().with_only_columns(*columns or [func.count()])
                rows = (await connection.execute(query)).all()
                tables[table.name] = sorted(_placed(list(row), places) for row in rows)
    finally:
        await engine.dispose()
    discord: dict[str, list[str]] = {}
    for channel_id, messages in plat.discord.messages.items():
        where = places.get(channel_id, channel_id)  # a thread has its starter message's id
        discord[where] = [
            _placed({k: v for k, v in m.items() if k not in ("id", "nonce")}, places)
            for m in messages
        ]
    slack: dict[str, list[str]] = {}
    for message in plat.slack.messages:
        where = message.channel if message.thread_ts is None else places[message.thread_ts]
        payload = {"text": message.text, "blocks": message.blocks, "metadata": message.metadata}
        slack.setdefault(where, []).append(_placed(payload, places))
    return {"tables": tables, "discord": discord, "slack": slack}


def _discord_places(discord: FakeDiscord) -> dict[str, str]:
    return {
        message["id"]: f"{channel_id}#{index}"
        for channel_id in discord_channels()
        for index, message in enumerate(discord.messages.get(channel_id, []))
    }


def _slack_places(slack: FakeSlack) -> dict[str, str]:
    places: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for message in slack.messages:
        if message.thread_ts is None:
            places[message.ts] = f"{message.channel}#{counts[message.channel]}"
            counts[message.channel] += 1
    return places


def _placed(value: object, places: dict[str, str]) -> str:
    """JSON of ``value`` with Discord snowflakes and Slack timestamps replaced by their place."""
    rendered = _ALERT_IN_KEY.sub(r'"\1:<alert>:', json.dumps(value, sort_keys=True, default=str))
    rendered = _KEY_HASH.sub("ref <key>", rendered)
    return re.sub(r"\d{17,20}|\d{10}\.\d{6}", lambda m: places.get(m.group(), "<id>"), rendered)


def scenario_plan(
    database_url: str, catalog: Path, pages: TimelineServer, plat: Platforms
) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "catalog_path": str(catalog),
        "rounds": [t.isoformat() for t in round_times()],
        "salt": SALT,
        "reports": planned_reports(),
        "scenario_clock": pages.clock_url,
        "discord_token": "kill-test-discord-token",
        "discord_api": plat.discord.api_base,
        "slack_token": "xoxb-kill-test",
        "slack_api": plat.slack.api_url,
    }


@pytest.mark.slow
async def test_kill_9_at_random_points_changes_nothing(
    engine: AsyncEngine, database_url: str, tmp_path: Path
) -> None:
    del engine  # asked for so that PostgreSQL is emptied after the test (SQLite: a file per run)
    rng = random.Random(SEED)
    async with TimelineServer(PAGES, START) as pages:
        urls = {name: pages.summary_url(name) for name in PAGES}
        catalog = write_catalog(tmp_path / "catalog.toml", urls)
        results = []
        for kills in (0, KILLS):
            run = Run(tmp_path / f"run-{kills}")
            run.workdir.mkdir()
            url = database_url
            if is_sqlite(database_url):
                url = f"sqlite+aiosqlite:///{run.workdir / 'bot.db'}"
            await seed(url, catalog)
            started = time.perf_counter()
            async with platforms() as plat:
                points = kill_points(results[0][0], kills, rng) if kills else []
                await run_scenario(run, plat, scenario_plan(url, catalog, pages, plat), points)
                run.seconds = time.perf_counter() - started
                results.append((run, await final_state(url, plat)))
    (clean, expected), (killed, actual) = results
    print(
        f"\nkill chaos: {sum(killed.kills.values())} kills {dict(killed.kills)}, "
        f"{killed.starts} starts, {killed.stored_before_kill} reports stored just before a kill; "
        f"clean run {clean.seconds:.1f} s, killed run {killed.seconds:.1f} s; "
        f"{len(expected['tables']['deliveries'])} deliveries, "
        f"{sum(map(len, expected['discord'].values()))} Discord and "
        f"{sum(map(len, expected['slack'].values()))} Slack messages"
    )
    assert sum(killed.kills.values()) == KILLS
    assert set(killed.kills) >= {"poll", "report", "fanout"}
    # The scenario did what it is for: alerts on both platforms, an early warning among them.
    assert any("reports" in m for ms in expected["discord"].values() for m in ms)
    assert expected["discord"]
    assert expected["slack"]
    for run, state in ((clean, expected), (killed, actual)):  # for whoever reads a failure
        (run.workdir / "final-state.json").write_text(json.dumps(state, indent=1))
    for part in ("discord", "slack"):
        assert actual[part] == expected[part], difference(expected[part], actual[part])
    for name, rows in expected["tables"].items():
        assert actual["tables"][name] == rows, f"table {name}: " + difference(
            {name: rows}, {name: actual["tables"][name]}
        )


def difference(expected: dict[str, list[str]], actual: dict[str, list[str]]) -> str:
    """The first place the killed run differs, as a diff of the two."""
    for where in sorted(set(expected) | set(actual)):
        left, right = expected.get(where, []), actual.get(where, [])
        if left != right:
            lines = difflib.unified_diff(left, right, "clean run", "killed run", lineterm="", n=0)
            return f"{where} differs:\n" + "\n".join(lines)[:3000]
    return "no difference"
