"""Faults on the chat platforms during a big fan-out: nothing posted twice, nothing lost quietly.

One incident goes to many Discord channels (several guilds) and Slack channels (several
workspaces, each with its own install) through the real outbox worker and the real senders,
against the fake Discord and fake Slack on loopback. The fakes answer a seeded-random share of
requests with 429s (with and without Retry-After, and Discord's global one), 5xx, or a dropped
connection (before or after doing the work), and one guild and one workspace lose their token
midway. Time is a `FakeClock`: the test jumps it to the next due retry instead of waiting.

``CHAOS_SCALE`` multiplies the channel counts and ``CHAOS_SEED`` picks the faults (``make
chaos`` runs a long version); the figures of each run are printed (``pytest -s``).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import col, select

from bot.adapters.discord.sender import DiscordSender, GlobalRateLimiter
from bot.adapters.slack import web_client
from bot.adapters.slack.sender import SlackSender
from bot.core.commands import Reply
from bot.core.events import EventKind
from bot.delivery.sender import ChannelRef, TransientDeliveryError
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.settings import Settings
from bot.store import migrate
from bot.store.engine import session_factory
from bot.store.models import AlertMessageRow, DeliveryRow, SubscriptionRow
from bot.store.slack_install_store import SlackInstallationStore
from bot.store.subscription_store import Scope
from tests.conftest import FakeClock
from tests.fakes import discord_server, slack_server
from tests.fakes.discord_server import Call, FakeDiscord
from tests.fakes.slack_server import ApiCall, FakeSlack
from tests.helpers import SVC_CATALOG, outage_event, record_event, subscribe_channels

SCALE = float(os.environ.get("CHAOS_SCALE", "1"))
SEED = int(os.environ.get("CHAOS_SEED", "11"))
DISCORD_CHANNELS = max(8, int(200 * SCALE))
SLACK_CHANNELS = max(6, int(100 * SCALE))
FAULT_RATE = 0.15
GUILDS = ("400000000000000001", "400000000000000002", "400000000000000003", "400000000000000004")
WORKSPACES = ("TCHAOS1", "TCHAOS2", "TCHAOS3")
REVOKED_GUILD, REVOKED_WORKSPACE = GUILDS[-1], WORKSPACES[-1]
MAX_ROUNDS = 2000
FAULTS = ("429", "429 without Retry-After", "global 429", "5xx", "drop before", "drop after")
_CHANNEL_PATH = re.compile(r"/channels/(\d+)")


@dataclass
class Chaos:
    """Decides each request's fate, from one seed, and counts what it did."""

    seed: int
    revoke_discord_after: int | None = None
    revoke_slack_after: int | None = None
    rate: float = FAULT_RATE
    requests: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    scripted: dict[str, list[str]] = field(default_factory=dict)
    """Faults for the next requests of a kind (a Slack method, or "POST messages" on Discord),
    in order, before any random ones."""
    journal: list[tuple[str, str, str]] = field(default_factory=list)
    seen: dict[tuple[str, str], int] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    """For retry-after values only."""
    """(request, channel, fault) of every fault, to explain a failure."""

    def _fault(self, request: str, channel: str) -> str | None:
        queue = self.scripted.get(request)
        seen = self.seen[request, channel] = self.seen.get((request, channel), 0) + 1
        # Drawn from what the request is, not from when it came: concurrent channels interleave
        # differently on every run, and a seed must replay the same faults.
        draw = random.Random(f"{self.seed}:{request}:{channel}:{seen}")
        if queue:
            kind: str | None = queue.pop(0)
        elif draw.random() < self.rate:
            kind = draw.choice(FAULTS)
        else:
            kind = None
        if kind is not None:
            self.injected[kind] += 1
            self.journal.append((request, channel, kind))
        return kind

    def discord(self, call: Call, fake: FakeDiscord) -> discord_server.Injected:
        self.requests += 1
        match = _CHANNEL_PATH.match(call.path)
        channel = fake.channels.get(match.group(1)) if match else None
        guild = channel.get("guild_id") if channel else None
        if (
            guild == REVOKED_GUILD
            and self.revoke_discord_after is not None
            and self.requests > self.revoke_discord_after
        ):
            self.injected["401 (token revoked)"] += 1
            return _discord_error(401, {"message": "401: Unauthorized", "code": 0})
        what = f"{call.method} {'messages' if call.path.endswith('/messages') else 'other'}"
        kind = self._fault(what, str(channel and channel["id"]))
        if kind is None:
            return None
        self.rng.seed(f"{self.seed}:{call.path}:{kind}")
        wait = round(self.rng.uniform(0.2, 6.0), 3)
        if kind == "429":
            return _discord_error(
                429,
                {"message": "You are being rate limited.", "retry_after": wait, "global": False},
                {
                    "Retry-After": str(int(wait) + 1),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(wait),
                    "X-RateLimit-Scope": "user",
                },
            )
        if kind == "429 without Retry-After":  # as a proxy in front of Discord may answer
            return _discord_error(429, {"message": "Too Many Requests"})
        if kind == "global 429":
            return _discord_error(
                429,
                {"message": "You are being rate limited.", "retry_after": wait, "global": True},
                {"Retry-After": str(int(wait) + 1), "X-RateLimit-Global": "true"},
            )
        if kind == "5xx":
            return _discord_error(self.rng.choice([500, 502, 503]), {"message": "oops", "code": 0})
        return discord_server.DROP_BEFORE if kind == "drop before" else discord_server.DROP_AFTER

    def slack(self, call: ApiCall, revoked_token: str) -> slack_server.Injected:
        self.requests += 1
        if (
            call.token == revoked_token
            and self.revoke_slack_after is not None
            and self.requests > self.revoke_slack_after
        ):
            self.injected["token_revoked"] += 1
            return slack_server.Failure(error="token_revoked")
        channel = str(call.params.get("channel"))
        kind = self._fault(call.method, channel)
        if kind is None:
            return None
        self.rng.seed(f"{self.seed}:{call.method}:{channel}:{kind}")
        if kind in ("429", "global 429"):  # Slack has no global limit: one more plain 429
            return slack_server.Failure(
                error="ratelimited", status=429, retry_after=self.rng.randint(1, 30)
            )
        if kind == "429 without Retry-After":
            return slack_server.Failure(error="ratelimited", status=429)
        if kind == "5xx":
            return slack_server.Failure(error="internal_error", status=self.rng.choice([500, 503]))
        return slack_server.DROP_BEFORE if kind == "drop before" else slack_server.DROP_AFTER


def _discord_error(
    status: int, body: dict[str, object], headers: dict[str, str] | None = None
) -> discord_server.Failure:
    return discord_server.Failure("*", re.compile(".*"), status, headers or {}, body, 1)


@dataclass
class Rig:
    discord: FakeDiscord
    slack: FakeSlack
    chaos: Chaos
    worker: OutboxWorker
    engine: AsyncEngine
    clock: FakeClock
    discord_channels: dict[str, str]
    """Channel id → guild id."""
    slack_channels: dict[str, str]
    """Channel id → workspace id."""

    async def record(self, kind: EventKind, key: str, status: str, body: str) -> None:
        """Stage an event of the incident for every subscribed channel, as the poller does."""
        await record_event(
            self.engine, self.clock, outage_event(kind, key, status, body, self.clock)
        )

    async def drain(self) -> int:
        """Run the worker, jumping the clock to each next retry, until nothing is pending."""
        sessions = session_factory(self.engine)
        for rounds in range(1, MAX_ROUNDS + 1):
            await self.worker.run_once()
            async with sessions() as session:
                waiting = (
                    await session.exec(
                        select(DeliveryRow).where(
                            col(DeliveryRow.status).in_(["pending", "sending"])
                        )
                    )
                ).all()
            if not waiting:
                return rounds
            self.clock.now = max(self.clock.now, min(d.next_attempt_at for d in waiting))
        raise AssertionError(f"the outbox did not drain in {MAX_ROUNDS} rounds")


@contextlib.asynccontextmanager
async def chaos_rig(
    engine: AsyncEngine,
    clock: FakeClock,
    chaos: Chaos,
    *,
    discord_count: int,
    slack_count: int,
    config: WorkerConfig | None = None,
) -> AsyncIterator[Rig]:
    """Subscriptions in every channel, both fakes with ``chaos`` deciding their faults, the
    worker with both real senders."""
    discord_channels = {
        str(500000000000000000 + i): GUILDS[i % len(GUILDS)] for i in range(discord_count)
    }
    slack_channels = {f"CCHAOS{i:05d}": WORKSPACES[i % len(WORKSPACES)] for i in range(slack_count)}
    sessions = session_factory(engine)
    installs = SlackInstallationStore(sessions, clock=clock)
    for team in WORKSPACES:
        await installs.async_save(
            Installation(team_id=team, team_name=team, bot_token=f"xoxb-{team}", user_id="U1")
        )
    places = [(Scope("discord", g), c) for c, g in discord_channels.items()]
    places += [(Scope("slack", t), c) for c, t in slack_channels.items()]
    await subscribe_channels(engine, clock, places)

    async def fake_sleep(seconds: float) -> None:  # the global limiter waits on our clock
        clock.advance(seconds=seconds)

    def monotonic() -> float:
        return clock.now.timestamp()

    async with (
        FakeDiscord(guild_ids=GUILDS) as discord,
        FakeSlack() as slack,
        aiohttp.ClientSession() as http,
    ):
        for channel_id, guild_id in discord_channels.items():
            discord.add_channel(guild_id, channel_id)
        # Retries here can come long after the first try: Discord's nonce would have expired,
        # so only the worker's own check (find_sent) may stand between a retry and a duplicate.
        discord.honour_nonces = False
        discord.inject = lambda call: chaos.discord(call, discord)
        slack.inject = lambda call: chaos.slack(call, f"xoxb-{REVOKED_WORKSPACE}")
        settings = Settings(_env_file=None, slack_api_url=slack.api_url)
        senders: dict[str, DiscordSender | SlackSender] = {
            "discord": DiscordSender(
                token="fake-token",
                api_base=discord.api_base,
                session=http,
                clock=clock,
                limiter=GlobalRateLimiter(monotonic=monotonic, sleep=fake_sleep),
                monotonic=monotonic,
            ),
            "slack": SlackSender(
                web_client(settings, retry_connection_errors=False),
                clock=clock,
                installations=installs,
            ),
        }
        worker = OutboxWorker(
            sessions=sessions, senders=senders, catalog=SVC_CATALOG, clock=clock, config=config
        )
        yield Rig(discord, slack, chaos, worker, engine, clock, discord_channels, slack_channels)


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
    chaos = Chaos(SEED)
    async with chaos_rig(
        engine, clock, chaos, discord_count=DISCORD_CHANNELS, slack_count=SLACK_CHANNELS
    ) as rig:
        yield rig


@dataclass
class Tally:
    deliveries: int = 0
    delivered: int = 0
    failed_and_reported: int = 0
    duplicates: int = 0


def _discord_posts(rig: Rig, channel_id: str) -> list[dict[str, object]]:
    return list(rig.discord.messages.get(channel_id, []))


def _slack_posts(rig: Rig, channel_id: str) -> list[slack_server.StoredMessage]:
    return [m for m in rig.slack.messages if m.channel == channel_id and m.thread_ts is None]


def _slack_replies(rig: Rig, channel_id: str, parent: str) -> list[slack_server.StoredMessage]:
    return [m for m in rig.slack.messages if m.channel == channel_id and m.thread_ts == parent]


async def _check(rig: Rig, *, updated: bool) -> Tally:
    """Every channel: delivered exactly once (and edited, with one thread reply, once updated),
    or failed with a reason on record and its subscription paused."""
    tally = Tally()
    async with session_factory(rig.engine)() as session:
        subscriptions = (await session.exec(select(SubscriptionRow))).all()
        deliveries = (await session.exec(select(DeliveryRow))).all()
        messages = (await session.exec(select(AlertMessageRow))).all()
    by_subscription: dict[int, list[DeliveryRow]] = {}
    for delivery in deliveries:
        by_subscription.setdefault(delivery.subscription_id, []).append(delivery)
    recorded = {m.subscription_id: m for m in messages}
    assert len(subscriptions) == len(rig.discord_channels) + len(rig.slack_channels)
    for subscription in subscriptions:
        own = by_subscription.get(subscription.id or 0, [])
        tally.deliveries += len(own)
        assert all(d.status in ("done", "failed") for d in own), own
        if subscription.platform == "discord":
            posts = _discord_posts(rig, subscription.channel_id)
        else:
            posts = _slack_posts(rig, subscription.channel_id)  # type: ignore[assignment]
        tally.duplicates += max(0, len(posts) - 1)
        assert len(posts) <= 1, (
            f"{subscription.channel_id} got the alert {len(posts)} times; faults there: "
            f"{[j for j in rig.chaos.journal if j[1] == subscription.channel_id]}"
        )
        failed = [d for d in own if d.status == "failed"]
        tally.failed_and_reported += len(failed)
        tally.delivered += len(own) - len(failed)
        if failed:
            # Only a lost token may stop a channel; it is said so and the channel paused.
            assert subscription.community_id in (REVOKED_GUILD, REVOKED_WORKSPACE), failed
            assert all(d.last_error for d in failed)
            assert not subscription.enabled
            assert subscription.disabled_reason
            continue
        assert subscription.enabled
        assert len(posts) == 1, f"{subscription.channel_id} never got its alert"
        message = recorded[subscription.id or 0]
        if subscription.platform == "discord":
            post = posts[0]
            assert isinstance(post, dict)
            assert message.message_id == post["id"]
            text = json.dumps(post["embeds"])
            replies = rig.discord.messages.get(message.message_id, [])
            reply_texts = [json.dumps(r["embeds"]) for r in replies]
        else:
            stored = posts[0]
            assert isinstance(stored, slack_server.StoredMessage)
            assert message.message_id == stored.ts
            text = stored.text + json.dumps(stored.blocks)
            replies = _slack_replies(rig, subscription.channel_id, stored.ts)  # type: ignore[assignment]
            reply_texts = [r.text + json.dumps(r.blocks) for r in replies]  # type: ignore[union-attr]
        if updated:
            assert "Found it" in text, f"{subscription.channel_id} was not edited"
            assert len(reply_texts) == 1, f"{subscription.channel_id}: {len(reply_texts)} replies"
            assert "Found it" in reply_texts[0]
            tally.duplicates += max(0, len(reply_texts) - 1)
        else:
            assert reply_texts == []
    return tally


async def test_fan_out_under_platform_faults_delivers_once_or_reports(rig: Rig) -> None:
    # Discord's token for one guild goes early in the first fan-out; Slack's for one workspace
    # during the update, after its channels got the first message.
    rig.chaos.revoke_discord_after = DISCORD_CHANNELS // 3
    await rig.record(EventKind.INCIDENT_OPENED, "opened", "investigating", "Looking")
    rounds = await rig.drain()
    opened = await _check(rig, updated=False)
    assert opened.failed_and_reported > 0  # the revoked guild really was hit

    rig.chaos.revoke_slack_after = rig.chaos.requests + SLACK_CHANNELS // 2
    rig.clock.advance(minutes=5)
    await rig.record(EventKind.INCIDENT_UPDATED, "u1", "identified", "Found it")
    rounds += await rig.drain()
    final = await _check(rig, updated=True)
    assert rig.chaos.injected["drop after"] > 0
    assert rig.chaos.injected["token_revoked"] > 0
    print(
        f"\nchaos seed {SEED}: {DISCORD_CHANNELS} Discord + {SLACK_CHANNELS} Slack channels, "
        f"{rig.chaos.requests} requests, {sum(rig.chaos.injected.values())} faults injected "
        f"{dict(rig.chaos.injected)}; {final.deliveries} deliveries, {final.delivered} delivered,"
        f" {final.failed_and_reported} failed and reported, {final.duplicates} duplicates, "
        f"{rounds} worker rounds"
    )


def _posts_to(rig: Rig, platform: str, channel_id: str) -> int:
    """Create requests that reached the platform for this channel (each could make a message)."""
    if platform == "discord":
        return len(rig.discord.matching("POST", rf"/channels/{channel_id}/messages"))
    calls = rig.slack.calls_to("chat.postMessage")
    return sum(1 for c in calls if c.params.get("channel") == channel_id)


@pytest.mark.parametrize(
    ("platform", "create", "find"),
    [
        ("slack", "chat.postMessage", "conversations.history"),
        ("discord", "POST messages", "GET messages"),
    ],
)
async def test_rate_limited_check_after_a_lost_answer_still_checks_before_resending(
    engine: AsyncEngine, clock: FakeClock, platform: str, create: str, find: str
) -> None:
    # The post went through but its answer was lost; the check for it was then rate limited.
    # A 429 proves only that the *check* created nothing: the next try must check again.
    chaos = Chaos(SEED, rate=0.0, scripted={create: ["drop after"], find: ["429"]})
    sizes = {"discord_count": int(platform == "discord"), "slack_count": int(platform == "slack")}
    async with chaos_rig(engine, clock, chaos, **sizes) as rig:
        await rig.record(EventKind.INCIDENT_OPENED, "o", "investigating", "Hm")
        await rig.drain()
        (channel,) = {**rig.discord_channels, **rig.slack_channels}
        assert _posts_to(rig, platform, channel) == 1
        await _check(rig, updated=False)
        assert chaos.injected == Counter({"drop after": 1, "429": 1})


async def test_rate_limited_check_after_a_lost_thread_reply_still_checks(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    chaos = Chaos(SEED, rate=0.0)
    async with chaos_rig(engine, clock, chaos, discord_count=0, slack_count=1) as rig:
        await rig.record(EventKind.INCIDENT_OPENED, "o", "investigating", "Hm")
        await rig.drain()
        chaos.scripted = {"chat.postMessage": ["drop after"], "conversations.replies": ["429"]}
        await rig.record(EventKind.INCIDENT_UPDATED, "u1", "identified", "Found it")
        await rig.drain()
        await _check(rig, updated=True)  # one reply in the thread, not two
        assert chaos.injected == Counter({"drop after": 1, "429": 1})


async def test_a_thread_reply_found_after_a_lost_answer_keeps_its_thread(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    # The reply went out but its answer was lost (as when the process dies right then): the
    # check finds it in the thread, and the thread is remembered, so the next update goes
    # straight there instead of starting the thread again.
    chaos = Chaos(SEED, rate=0.0)
    async with chaos_rig(engine, clock, chaos, discord_count=1, slack_count=1) as rig:
        await rig.record(EventKind.INCIDENT_OPENED, "o", "investigating", "Hm")
        await rig.drain()
        chaos.scripted = {"POST messages": ["drop after"], "chat.postMessage": ["drop after"]}
        await rig.record(EventKind.INCIDENT_UPDATED, "u1", "identified", "Found it")
        await rig.drain()
        async with session_factory(engine)() as session:
            messages = (await session.exec(select(AlertMessageRow))).all()
        assert len(messages) == 2
        assert all(m.thread_id == m.message_id for m in messages)  # a thread takes its id
        await rig.record(EventKind.INCIDENT_UPDATED, "u2", "monitoring", "Fixed")
        await rig.drain()
        assert len(rig.discord.matching("POST", r"/channels/\d+/messages/\d+/threads")) == 1
        assert chaos.injected == Counter({"drop after": 2})


async def test_a_long_429_storm_delays_a_delivery_but_does_not_drop_it(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    storm = ["429", "global 429", "429 without Retry-After"] * 5  # more than max_attempts
    chaos = Chaos(
        SEED, rate=0.0, scripted={"POST messages": storm, "chat.postMessage": list(storm)}
    )
    async with chaos_rig(engine, clock, chaos, discord_count=1, slack_count=1) as rig:
        await rig.record(EventKind.INCIDENT_OPENED, "o", "investigating", "Hm")
        await rig.drain()
        tally = await _check(rig, updated=False)
        assert (tally.delivered, tally.failed_and_reported) == (2, 0)
        assert chaos.injected == Counter(
            {"429": 10, "global 429": 10, "429 without Retry-After": 10}
        )


async def test_a_bucket_closed_a_hair_longer_is_retried_later_not_spun(clock: FakeClock) -> None:
    now = [1000.0]
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http:
        sender = DiscordSender(
            token="t", api_base=fake.api_base, session=http, clock=clock, monotonic=lambda: now[0]
        )
        channel = ChannelRef("discord", discord_server.GUILD_ID, discord_server.CHANNEL_ID)
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "2.0000004"}
        fake.fail("POST", r"/channels/\d+/messages", 429, headers=headers, body={"retry_after": 2})
        with pytest.raises(TransientDeliveryError) as first:
            await sender.send(channel, Reply(title="Down"), key="k")
        assert first.value.rate_limited
        now[0] += 2.0  # when the platform said, give or take the clocks' rounding
        with pytest.raises(TransientDeliveryError) as early:
            await sender.send(channel, Reply(title="Down"), key="k")
        assert early.value.rate_limited
        assert early.value.retry_after == 0.001  # a real pause, not a sub-microsecond spin
        now[0] += 0.001
        await sender.send(channel, Reply(title="Down"), key="k")
        assert len(fake.matching("POST", r"/channels/\d+/messages")) == 2


async def test_senders_needing_the_database_do_not_starve_the_pool(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    # More channels in flight than connections: the Slack sender reads each workspace's token
    # from the database mid-delivery, so no delivery may sit on a connection while it waits.
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{tmp_path / 'pool.db'}", pool_size=2, max_overflow=0, pool_timeout=2
    )
    await migrate.upgrade(engine)
    chaos = Chaos(SEED, rate=0.0)
    config = WorkerConfig(channel_concurrency=6)
    try:
        async with chaos_rig(
            engine, clock, chaos, discord_count=0, slack_count=12, config=config
        ) as rig:
            await rig.record(EventKind.INCIDENT_OPENED, "o", "investigating", "Hm")
            await rig.worker.run_once()
            await _check(rig, updated=False)
            async with session_factory(engine)() as session:
                deliveries = (await session.exec(select(DeliveryRow))).all()
            assert [(d.status, d.attempts) for d in deliveries] == [("done", 1)] * 12
            assert "failed unexpectedly" not in caplog.text
    finally:
        await engine.dispose()
