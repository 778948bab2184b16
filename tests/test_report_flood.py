"""A /report flood from many new accounts, end to end (issue #11, "Abuse").

Every report goes through the neutral dispatch of /report (the real cog, the real database), the
real CrowdWatch evaluates it (nudged 5 s after a counted report, and every minute), and the real
outbox stages and sends early warnings to a subscribed Discord channel and Slack channel. The
detector starts from an empty stored week, so the usual rate is the floor: the most sensitive
case there is, where a flood has the best chance to pass for a crowd.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core import crowd
from bot.core.alerts import EDIT, POST
from bot.core.commands import CommandOutcome, CommandRegistry
from bot.core.crowd_codec import decode_crowd_memory
from bot.core.early_warning import LEVEL_LABELS
from bot.core.poisson import surprise_of
from bot.core.rich import to_plain
from bot.delivery.worker import OutboxWorker
from bot.services.crowd_watch import NUDGE_DELAY, CrowdWatch
from bot.services.deps import AppDeps
from bot.store import catalog_store, subscription_store
from bot.store.crowd_models import CrowdMemoryRow, EarlyWarningRow, ReportRow
from bot.store.engine import session_factory
from bot.store.models import AlertRow, DeliveryRow
from bot.store.subscription_store import Scope
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from cogs.report import MAX_PER_COMMUNITY_PER_HOUR, MAX_PER_USER_PER_HOUR
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.helpers import catalog_for, settle

CONFIG = crowd.CrowdConfig()  # what CrowdWatch uses when the app gives it none
OK, REFUSED = CommandOutcome.OK, CommandOutcome.REFUSED
POSSIBLE = CONFIG.rules[0]
THANKS = "Thanks, report received"
AGAIN = "Already counted"
NOT_AGAIN = "so this one was not counted again"
USER_LIMIT = "Thanks, you have reported a lot in the last hour: we have it."
COMMUNITY_LIMIT = "This community sent many reports this hour; we have the picture. Thanks!"
SUBSCRIBED = {("discord", "home", "alerts"), ("slack", "T-home", "C-alerts")}
TICK_SECONDS = 60  # the scheduler's crowd tick


@dataclass
class Rig:
    deps: AppDeps
    clock: FakeClock
    watch: CrowdWatch
    worker: OutboxWorker
    senders: dict[str, RecordingSender]
    outcomes: Counter[CommandOutcome]
    release: asyncio.Event
    elapsed: int = 0

    async def report(self, user: str, community: str, platform: str = "discord") -> str:
        reply = await TestAdapter.of(self.deps, self.clock).invoke(
            "report",
            {"service": "openai", "what": "errors"},
            platform=platform,
            user=user,
            community=community,
            channel=f"ch-{community}",
        )
        return headline_text(reply, self.clock.now).strip()

    async def wait(self, seconds: int) -> None:
        """Let time pass: nudged evaluations every NUDGE_DELAY s, the tick and the outbox every
        minute, as in the app (the nudge's delay is the test's, not the wall clock's)."""
        for _ in range(seconds):
            self.clock.advance(seconds=1)
            self.elapsed += 1
            if self.elapsed % int(NUDGE_DELAY) == 0:
                self.release.set()
                await settle(self.watch)
                self.release.clear()
            if self.elapsed % TICK_SECONDS == 0:
                await self.watch.tick()
                await self.worker.run_once()

    async def flood(self, senders: Iterable[tuple[str, str, str]], *, every: int = 1) -> list[str]:
        """(platform, community, user) report one after the other, `every` seconds apart."""
        answers = []
        for platform, community, user in senders:
            answers.append(await self.report(user, community, platform))
            await self.wait(every)
        return answers

    async def settle_minute(self) -> None:
        await self.wait(TICK_SECONDS - self.elapsed % TICK_SECONDS)

    async def memory(self) -> crowd.CrowdMemory:
        async with self.deps.sessions() as session:
            row = await session.get(CrowdMemoryRow, "openai")
        assert row is not None
        return decode_crowd_memory(row.memory)

    async def staged(self) -> Counter[tuple[str, str]]:
        """Staged deliveries per (platform, action)."""
        async with self.deps.sessions() as session:
            rows = (await session.exec(select(DeliveryRow))).all()
        return Counter((r.platform, r.action) for r in rows)

    async def alerts(self) -> list[AlertRow]:
        async with self.deps.sessions() as session:
            return list((await session.exec(select(AlertRow))).all())

    async def warnings(self) -> list[EarlyWarningRow]:
        async with self.deps.sessions() as session:
            return list((await session.exec(select(EarlyWarningRow))).all())

    async def stored(self) -> tuple[int, int]:
        """(stored, counted) report rows."""
        async with self.deps.sessions() as session:
            rows = (await session.exec(select(ReportRow))).all()
        return len(rows), sum(r.counted for r in rows)

    def sent(self) -> Counter[tuple[str, str]]:
        return Counter((p, c.action) for p, s in self.senders.items() for c in s.calls)

    async def assert_nothing_raised(self) -> None:
        await self.settle_minute()
        assert await self.alerts() == []
        assert await self.warnings() == []
        assert await self.staged() == Counter()
        assert self.sent() == Counter()
        assert self.outcomes[CommandOutcome.ERROR] == 0


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture) -> Rig:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        for platform, community, channel in SUBSCRIBED:
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope(platform, community),
                channel_id=channel,
                service_id="openai",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=True,
                maintenance=True,
                now=clock.now,
            )
        await session.commit()
    release = asyncio.Event()

    async def nudge_delay(_seconds: float) -> None:
        await release.wait()

    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, sleep=nudge_delay)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    deps.reports.counted.subscribe(watch.nudge)
    outcomes: Counter[CommandOutcome] = Counter()
    deps.registry.on_answered = lambda _command, outcome, _seconds: outcomes.update([outcome])
    senders = {p: RecordingSender(platform=p) for p in ("discord", "slack")}
    worker = OutboxWorker(sessions=sessions, senders=senders, catalog=catalog, clock=clock)
    await watch.tick()  # the detector learns the (empty) stored week: usual = the floor
    caplog.set_level(logging.WARNING)
    return Rig(deps, clock, watch, worker, senders, outcomes, release)


@pytest.fixture(autouse=True)
def nothing_logged(caplog: pytest.LogCaptureFixture) -> Iterable[None]:
    """CrowdWatch logs and swallows a failed evaluation: a quiet detector must not hide one."""
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def counted_by_spec(by_community: Counter[str]) -> int:
    """docs/crowd.md: each community counts for at most `dominance` × all the others + slack."""
    total = sum(by_community.values())
    capped = sum(
        min(n, CONFIG.dominance_slack + CONFIG.dominance * (total - n))
        for n in by_community.values()
    )
    return math.floor(capped + 1e-9)


def windows_by_spec(
    memory: crowd.CrowdMemory, assessment: crowd.CrowdAssessment, now: datetime
) -> None:
    """Every window the detector looked at counted exactly what the spec says."""
    for stat in assessment.windows:
        seen = memory.recent.values()
        inside = Counter(c for at, c in seen if now - stat.window < at <= now)
        assert stat.reporters == sum(inside.values())
        assert stat.communities == len(inside)
        assert stat.counted == counted_by_spec(inside)


def floor_expected(window: timedelta) -> float:
    return CONFIG.floor_per_hour * (window / timedelta(hours=1))


async def test_300_new_accounts_in_one_guild_raise_no_warning(rig: Rig) -> None:
    accounts = [("discord", "raid", f"new-{i}") for i in range(300)]
    first = await rig.flood(accounts)  # each new account reports once, one a second
    assert all(a.startswith(THANKS) for a in first)
    again = await rig.flood(accounts)  # and again: repeats, until the community's hourly cap
    repeats = MAX_PER_COMMUNITY_PER_HOUR - len(accounts)
    assert all(a.startswith(AGAIN) and NOT_AGAIN in a for a in again[:repeats])
    assert again[repeats:] == [COMMUNITY_LIMIT] * (len(accounts) - repeats)
    assert rig.outcomes == Counter(
        {OK: MAX_PER_COMMUNITY_PER_HOUR, REFUSED: len(accounts) - repeats}
    )
    assert await rig.stored() == (MAX_PER_COMMUNITY_PER_HOUR, len(accounts))

    await rig.assert_nothing_raised()
    memory = await rig.memory()
    assert len(memory.recent) == len(accounts)  # the detector saw every account ...
    _, assessment = crowd.evaluate(memory, now=rig.clock.now, config=CONFIG)
    assert assessment.level is crowd.CrowdLevel.NONE
    longest = max(assessment.windows, key=lambda s: s.window)
    assert (longest.reporters, longest.communities) == (300, 1)
    assert longest.counted == CONFIG.dominance_slack  # ... and one community alone counts 2
    windows_by_spec(memory, assessment, rig.clock.now)

    # The cap belongs to that guild: the same id on Slack is another community, still heard.
    assert (await rig.report("someone", "raid", "slack")).startswith(THANKS)
    await rig.assert_nothing_raised()


async def test_new_accounts_over_two_communities_299_and_1_raise_nothing(rig: Rig) -> None:
    raid = [("discord", "raid", f"new-{i}") for i in range(299)]
    answers = await rig.flood([*raid[:150], ("slack", "T-other", "lone"), *raid[150:]])
    assert all(a.startswith(THANKS) for a in answers)

    # What the spec says: a window holds at most 299 + 1, and the raid counts for at most
    # dominance × 1 + slack, so a window counts at most floor(1 + slack + dominance) = 3.
    # The shortest window at the floor expects the fewest; even there, 3 is not surprising.
    most = counted_by_spec(Counter(raid=299, other=1))
    assert most == math.floor(1 + CONFIG.dominance_slack + CONFIG.dominance)
    shortest = min(CONFIG.windows)
    best = surprise_of(most, floor_expected(shortest), len(CONFIG.windows))
    assert best < POSSIBLE.enter_surprise  # so: no warning, at any moment

    await rig.assert_nothing_raised()
    memory = await rig.memory()
    _, assessment = crowd.evaluate(memory, now=rig.clock.now, config=CONFIG)
    assert assessment.level is crowd.CrowdLevel.NONE
    assert max(s.counted for s in assessment.windows) == most
    assert max(s.surprise for s in assessment.windows) <= best
    windows_by_spec(memory, assessment, rig.clock.now)
    # The dominance rule is what holds it back: without it, the same memory raises a warning.
    uncapped = replace(CONFIG, dominance=1e9)
    assert crowd.evaluate(memory, now=rig.clock.now, config=uncapped)[1].level is (
        crowd.CrowdLevel.POSSIBLE
    )


async def test_a_genuine_crowd_on_discord_and_slack_warns_once_and_a_flood_adds_nothing(
    rig: Rig,
) -> None:
    communities = [("discord", f"guild-{i}") for i in range(4)] + [
        ("slack", f"T{i}") for i in range(4)
    ]
    people = [(*communities[i % 8], f"person-{i}") for i in range(40)]
    answers = await rig.flood(people, every=6)  # 40 people, 8 communities, 4 minutes
    assert all(a.startswith(THANKS) for a in answers)
    await rig.settle_minute()

    (alert,) = await rig.alerts()
    (warning,) = await rig.warnings()
    assert warning.closed_at is None
    assert warning.level == crowd.CrowdLevel.WIDESPREAD.value
    facts = json.loads(warning.facts)
    assert (facts["reporters"], facts["communities"]) == (len(people), len(communities))
    edits = alert.version - 1  # one edit per level change after it opened: at most 2
    assert 0 < edits <= len(CONFIG.rules) - 1
    per_channel = {POST: 1, EDIT: edits}
    expected = Counter({(p, a): n for p, _, _ in SUBSCRIBED for a, n in per_channel.items()})
    assert await rig.staged() == expected  # per channel, not per report
    await rig.worker.run_once()
    sent = rig.sent()
    for platform, _, _ in SUBSCRIBED:  # a later edit may make an earlier one moot: never more
        assert sent[platform, "send"] == 1
        assert 1 <= sent[platform, "edit"] <= edits
        last = rig.senders[platform].calls[-1].reply
        assert [to_plain(f.value, rig.clock.now) for f in last.fields if f.name == "Level"] == [
            LEVEL_LABELS[crowd.CrowdLevel.WIDESPREAD]
        ]
    assert {(p, c.channel.channel_id) for p, s in rig.senders.items() for c in s.calls} == {
        (p, channel) for p, _, channel in SUBSCRIBED
    }

    # The flood goes on: 300 new accounts in one guild, and everyone reports again.
    raid = [("discord", "raid", f"new-{i}") for i in range(300)]
    more = await rig.flood([*raid, *people])
    assert sum(a.startswith(THANKS) for a in more) == len(raid)
    assert sum(a.startswith(AGAIN) for a in more) == len(people)
    await rig.settle_minute()
    await rig.worker.run_once()
    assert [a.id for a in await rig.alerts()] == [alert.id]
    assert (await rig.alerts())[0].version == alert.version
    assert len(await rig.warnings()) == 1
    assert await rig.staged() == expected
    assert rig.sent() == sent
    assert rig.outcomes == Counter({OK: len(people) * 2 + len(raid)})


async def test_one_user_reporting_1000_times_counts_once_and_is_told_so(rig: Rig) -> None:
    answers = await rig.flood([("discord", "home", "loud")] * 1000)
    assert answers[0].startswith(THANKS)
    assert all(a.startswith(AGAIN) and NOT_AGAIN in a for a in answers[1:MAX_PER_USER_PER_HOUR])
    assert answers[MAX_PER_USER_PER_HOUR:] == [USER_LIMIT] * (1000 - MAX_PER_USER_PER_HOUR)
    assert rig.outcomes == Counter(
        {OK: MAX_PER_USER_PER_HOUR, REFUSED: 1000 - MAX_PER_USER_PER_HOUR}
    )
    assert await rig.stored() == (MAX_PER_USER_PER_HOUR, 1)
    # The limit follows the person, not the community; the same id on Slack is someone else.
    assert await rig.report("loud", "elsewhere") == USER_LIMIT
    assert (await rig.report("loud", "T-home", "slack")).startswith(THANKS)
    await rig.assert_nothing_raised()
    assert len((await rig.memory()).recent) == 2  # the detector saw two people

    rig.clock.advance(hours=1)  # an hour later, the person is heard again, and counted again
    assert (await rig.report("loud", "home")).startswith(THANKS)
    assert await rig.stored() == (MAX_PER_USER_PER_HOUR + 2, 3)
    await rig.assert_nothing_raised()
