"""The alert lifecycle end to end: a real timeline, the real poller, the outbox, a fake platform."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import CommandRegistry
from bot.core.mention import Mention, MentionKind
from bot.core.rich import to_plain
from bot.delivery.sender import PermanentDeliveryError, TransientDeliveryError
from bot.delivery.worker import OutboxWorker
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, parse_timeline, summary_at
from bot.store import alert_store, catalog_store
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import catalog_for

TIMELINE = parse_timeline(
    (
        FIXTURES / "timelines" / "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
    ).read_text()
)


@dataclass
class Rig:
    server: FakeStatusServer
    poller: StatusPoller
    worker: OutboxWorker
    sender: RecordingSender
    deps: AppDeps
    clock: FakeClock
    engine: AsyncEngine

    async def say(
        self, command: str, *, community: str, channel: str, admin: bool = True, **options: str
    ) -> str:
        reply = await TestAdapter.of(self.deps, self.clock, user="mod").invoke(
            command, options, community=community, channel=channel, admin=admin
        )
        return headline_text(reply, self.clock.now)

    async def step(self) -> None:
        self.server.set_json(SUMMARY_PATH, summary_at(TIMELINE, self.clock.now))
        self.server.set_json("/api/v2/incidents.json", incidents_at(TIMELINE, self.clock.now))
        await self.poller.poll_all()
        await self.worker.run_once()


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
        catalog: Catalog = catalog_for({"claude": server.url(SUMMARY_PATH)})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=HttpFetcher(http, timeout=1),
            prober=HttpProber(http),
            clock=clock,
            record_events=lambda s, e, n: alert_store.record_alert_events(
                session=s, events=e, now=n
            ),
        )
        sender = RecordingSender()
        worker = OutboxWorker(
            sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock
        )
        deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
        clock.now = TIMELINE.started_at - timedelta(minutes=5)
        yield Rig(server, poller, worker, sender, deps, clock, engine)


async def play(rig: Rig, until: timedelta | None = None) -> None:
    end = (
        TIMELINE.updates[-1].posted_at + timedelta(minutes=2)
        if until is None
        else TIMELINE.started_at + until
    )
    while rig.clock.now <= end:
        await rig.step()
        rig.clock.advance(minutes=1)


async def test_one_living_message_per_channel(rig: Rig) -> None:
    assert "Subscribed" in await rig.say("subscribe", community="A", channel="a1", service="claude")
    await rig.say(
        "subscribe", community="B", channel="b1", service="claude", min_severity="critical"
    )
    await play(rig)
    calls = rig.sender.calls
    assert [c.action for c in calls if c.channel.channel_id == "b1"] == []  # major < critical
    a1 = [c for c in calls if c.channel.channel_id == "a1"]
    assert [c.action for c in a1] == ["send"] + [
        "edit",
        "thread",
    ] * 5  # 3 updates, resolved, postmortem
    first, last_edit = a1[0], [c for c in a1 if c.action == "edit"][-1]
    assert first.reply.title == "🟠 Claude: Elevated errors across many models"
    assert all(
        c.message_id == first.message_id for c in a1[1:]
    )  # edits and replies hit that message
    assert last_edit.reply.title is not None
    assert last_edit.reply.title.startswith("✅")
    assert "Resolved after 1 h 20 min." in to_plain(last_edit.reply.body, rig.clock.now)
    threads = [to_plain(c.reply.body, rig.clock.now) for c in a1 if c.action == "thread"]
    assert threads[0].startswith("Investigating")
    assert "identified that the outage" in threads[0]
    assert threads[3].startswith("Resolved")
    assert "full recovery" in threads[3]
    assert threads[4].startswith("Postmortem")


async def test_subscribing_mid_outage_posts_the_open_incident(rig: Rig) -> None:
    await play(rig, until=timedelta(minutes=20))
    assert rig.sender.calls == []  # nobody subscribed yet
    text = await rig.say("subscribe", community="A", channel="late", service="claude")
    assert "1 open incident(s) right now" in text
    await rig.worker.run_once()
    assert rig.sender.actions() == [("send", "late")]


async def test_rate_limited_send_is_retried_once_not_stormed(rig: Rig) -> None:
    await rig.say("subscribe", community="A", channel="a1", service="claude")
    rig.sender.fail_next(TransientDeliveryError("429", retry_after=30))
    await play(rig, until=timedelta(0))  # up to the moment the incident opens
    rig.clock.now = TIMELINE.started_at
    assert rig.sender.calls == []
    async with rig.deps.sessions() as session:
        (post,) = (await session.exec(select(DeliveryRow))).all()
    assert (post.status, post.attempts) == ("pending", 1)
    assert post.next_attempt_at >= rig.clock.now + timedelta(seconds=25)
    await rig.worker.run_once()  # not due yet: no retry storm
    assert rig.sender.calls == []
    rig.clock.advance(seconds=31)
    await rig.worker.run_once()
    assert rig.sender.actions() == [("send", "a1")]


async def test_lost_answer_after_platform_accepted_posts_nothing_twice(rig: Rig) -> None:
    await rig.say("subscribe", community="A", channel="a1", service="claude")

    original = rig.sender.send

    async def accepted_then_dropped(*args: object, **kwargs: object) -> object:
        await original(*args, **kwargs)  # type: ignore[arg-type]
        rig.sender.send = original  # type: ignore[method-assign]
        raise TransientDeliveryError("connection reset after the platform stored it")

    rig.sender.send = accepted_then_dropped  # type: ignore[method-assign]
    await play(rig, until=timedelta(minutes=1))
    rig.clock.advance(minutes=5)
    await rig.worker.run_once()
    await play(rig)
    assert [a for a, _ in rig.sender.actions()].count("send") == 1
    edits = [c for c in rig.sender.calls if c.action == "edit"]
    assert edits
    assert all(c.message_id == rig.sender.calls[0].message_id for c in edits)


async def test_permanent_failure_pauses_the_subscription(rig: Rig) -> None:
    await rig.say("subscribe", community="A", channel="gone", service="claude")
    rig.sender.fail_next(PermanentDeliveryError("channel not found"))
    await play(rig)
    assert rig.sender.calls == []
    async with rig.deps.sessions() as session:
        (subscription,) = (await session.exec(select(SubscriptionRow))).all()
    assert not subscription.enabled
    listing = await rig.say("subscriptions", community="A", channel="any")
    assert "paused: channel not found" in listing


async def test_subscriptions_are_private_to_their_community(rig: Rig) -> None:
    await rig.say(
        "subscribe", community="A", channel="a1", service="claude", components="Claude API"
    )
    assert "a1" in await rig.say("subscriptions", community="A", channel="x")
    assert "No channel here follows" in await rig.say("subscriptions", community="B", channel="x")
    # B cannot remove A's subscription, even naming the same channel id.
    assert "was not following" in await rig.say(
        "unsubscribe", community="B", channel="a1", service="claude"
    )
    assert "a1" in await rig.say("subscriptions", community="A", channel="x")
    assert "Only server admins" in await rig.say(
        "subscribe", community="A", channel="a1", service="claude", admin=False
    )


async def test_mention_must_be_a_role(rig: Rig) -> None:
    bad = await rig.say(
        "subscribe", community="A", channel="a1", service="claude", mention="@everyone"
    )
    assert "must be a role" in bad
    ok = await rig.say(
        "subscribe", community="A", channel="a1", service="claude", mention="<@&123456789>"
    )
    assert "mention the role" in ok
    await play(rig, until=timedelta(minutes=1))
    assert rig.sender.calls[0].mention_role == Mention(MentionKind.ROLE, "123456789")


async def test_reminders_while_an_incident_stays_open(rig: Rig) -> None:
    await rig.say("subscribe", community="A", channel="a1", service="claude")
    await play(rig, until=timedelta(minutes=1))
    every = timedelta(hours=4)
    for hours in (3, 4, 4.5, 8, 8.2):
        rig.clock.now = TIMELINE.started_at + timedelta(hours=hours)
        async with rig.deps.sessions() as session:
            await alert_store.stage_reminders(session=session, now=rig.clock.now, every=every)
            await session.commit()
        await rig.worker.run_once()
    reminders = [
        to_plain(c.reply.body, rig.clock.now) for c in rig.sender.calls if c.action == "thread"
    ]
    assert reminders == [
        "Still ongoing, 4 h so far. I'll post here as soon as it changes.",
        "Still ongoing, 8 h so far. I'll post here as soon as it changes.",
    ]


async def test_alert_buttons_lead_to_commands(rig: Rig) -> None:
    await rig.say("subscribe", community="A", channel="a1", service="claude")
    await play(rig, until=timedelta(minutes=1))
    buttons = rig.sender.calls[0].reply.buttons
    actions = [b.action for b in buttons if b.action]
    assert actions == ["status claude", "report claude", "workaround list claude"]
    links = [b.url.address for b in buttons if b.url]
    assert links == ["https://status.claude.com/incidents/9g6qpr72ttbr"]
    # Every action is a command the registry knows, so every platform can dispatch it.
    assert all(rig.deps.registry.get(a.split()[0]) for a in actions)


@pytest.mark.parametrize("wait", [math.nan, math.inf, -math.inf, -30.0, 1e12])
async def test_a_senders_unusable_retry_after_never_stops_the_round(rig: Rig, wait: float) -> None:
    await rig.say("subscribe", community="A", channel="a1", service="claude")
    await rig.say("subscribe", community="A", channel="a2", service="claude")
    rig.sender.fail_next(TransientDeliveryError("429", retry_after=wait))
    await play(rig, until=timedelta(0))  # the round goes on: the other channel gets its post
    assert [channel for _, channel in rig.sender.actions()] in (["a1"], ["a2"])
    async with rig.deps.sessions() as session:
        delayed = [d for d in (await session.exec(select(DeliveryRow))).all() if d.attempts == 1]
    (retry,) = [d for d in delayed if d.status == "pending"]
    # Tried when the incident opened: retried within an hour of that, never "never".
    assert timedelta(0) <= retry.next_attempt_at - TIMELINE.started_at <= timedelta(hours=1)
