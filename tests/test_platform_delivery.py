"""/subscribe on Discord and Slack → an incident → the outbox → the fake platform's inbox.

The real command dispatch, the real worker and the real senders, against the fake Discord and
fake Slack on loopback (which refuse what the real ones refuse: repeated button ids, embeds
over 6,000 characters). What arrives is checked as the platform would show it: the mention
markup, the buttons, and that the channel keeps getting alerts after a refused message.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.adapters.discord.sender import DiscordSender
from bot.adapters.slack import web_client
from bot.adapters.slack.sender import SlackSender
from bot.core.commands import CommandRegistry, Tone
from bot.core.events import EventKind
from bot.delivery.worker import OutboxWorker
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.store import catalog_store
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.discord_server import CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.fakes.slack_server import TEAM_ID, Failure, FakeSlack
from tests.helpers import SVC_CATALOG, outage_event, record_event

ROLE = "290926798626357111"
GROUP = "S0614TZR7"


@dataclass
class Rig:
    discord: FakeDiscord
    slack: FakeSlack
    worker: OutboxWorker
    deps: AppDeps
    clock: FakeClock
    engine: AsyncEngine

    async def say(
        self, platform: str, command: str, *, channel: str, **options: str
    ) -> tuple[str, bool]:
        """Run a command as an admin; (its answer as text, whether it was an error)."""
        reply = await TestAdapter.of(self.deps, self.clock, user="mod").invoke(
            command,
            options,
            platform=platform,
            community=GUILD_ID if platform == "discord" else TEAM_ID,
            channel=channel,
            admin=True,
        )
        return headline_text(reply, self.clock.now), reply.tone is Tone.WARNING

    async def incident(self, incident_id: str = "inc", title: str = "Outage") -> None:
        """Incident ``incident_id`` of "svc" opens; the worker delivers what it staged."""
        event = outage_event(
            EventKind.INCIDENT_OPENED, incident_id, "investigating", "", self.clock
        )
        await record_event(
            self.engine,
            self.clock,
            dataclasses.replace(event, incident_id=incident_id, title=title),
        )
        await self.worker.run_once()

    async def subscriptions(self) -> list[SubscriptionRow]:
        async with self.deps.sessions() as session:
            return list((await session.exec(select(SubscriptionRow))).all())

    async def deliveries(self) -> list[DeliveryRow]:
        async with self.deps.sessions() as session:
            return list((await session.exec(select(DeliveryRow))).all())

    def discord_posts(self) -> list[dict[str, Any]]:
        return [c.json for c in self.discord.matching("POST", rf"/channels/{CHANNEL_ID}/messages")]


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=SVC_CATALOG)
        await session.commit()
    async with FakeDiscord() as discord, FakeSlack() as slack, aiohttp.ClientSession() as http:
        settings = Settings(_env_file=None, slack_bot_token="xoxb-t", slack_api_url=slack.api_url)
        senders = {
            "discord": DiscordSender(
                token="fake-token", api_base=discord.api_base, session=http, clock=clock
            ),
            "slack": SlackSender(web_client(settings, retry_connection_errors=False), clock=clock),
        }
        worker = OutboxWorker(sessions=sessions, senders=senders, catalog=SVC_CATALOG, clock=clock)
        deps = AppDeps(
            catalog=SVC_CATALOG, sessions=sessions, registry=load_cogs(CommandRegistry())
        )
        yield Rig(discord, slack, worker, deps, clock, engine)


# --- mentions --------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", [f"<@&{ROLE}>", ROLE, f" <@&{ROLE}> "])
async def test_a_discord_role_picked_in_subscribe_is_pinged_by_the_alert(
    rig: Rig, typed: str
) -> None:
    answer, failed = await rig.say(
        "discord", "subscribe", channel=CHANNEL_ID, service="svc", mention=typed
    )
    assert not failed, answer
    assert "mention the role you picked" in answer
    await rig.incident()
    (post,) = rig.discord_posts()
    assert post["content"] == f"<@&{ROLE}>"
    # Exactly that role may be pinged: no @everyone, no user, no other role.
    assert post["allowed_mentions"] == {"parse": [], "roles": [int(ROLE)]}
    assert (await rig.subscriptions())[0].enabled


@pytest.mark.parametrize(
    ("typed", "markup"),
    [
        (f"<!subteam^{GROUP}|@oncall>", f"<!subteam^{GROUP}>"),
        (f"<!subteam^{GROUP}>", f"<!subteam^{GROUP}>"),
        (GROUP, f"<!subteam^{GROUP}>"),
        ("@here", "<!here>"),
        ("<!here>", "<!here>"),
        ("@channel", "<!channel>"),
    ],
)
async def test_a_slack_group_or_here_in_subscribe_is_pinged_by_the_alert(
    rig: Rig, typed: str, markup: str
) -> None:
    answer, failed = await rig.say(
        "slack", "subscribe", channel="C42", service="svc", mention=typed
    )
    assert not failed, answer
    await rig.incident()
    (message,) = rig.slack.messages
    assert message.channel == "C42"
    assert message.text.startswith(markup + " ")
    assert message.blocks[1]["text"]["text"].startswith(markup)  # after the header block


@pytest.mark.parametrize(
    ("platform", "typed"),
    [
        ("discord", "@everyone"),
        ("discord", "<@123456789>"),  # a user
        ("discord", "@ai-alerts"),  # typed, not picked: no id to ping
        ("discord", f"<!subteam^{GROUP}>"),  # Slack markup on Discord
        ("slack", "@everyone"),
        ("slack", "@oncall"),
        ("slack", f"<@&{ROLE}>"),  # Discord markup on Slack
        ("slack", "<@U123456|bob>"),
    ],
)
async def test_a_mention_the_platform_cannot_make_is_refused_and_never_stored(
    rig: Rig, platform: str, typed: str
) -> None:
    channel = CHANNEL_ID if platform == "discord" else "C42"
    answer, failed = await rig.say(
        platform, "subscribe", channel=channel, service="svc", mention=typed
    )
    assert failed
    assert "mention must be" in answer
    assert "Traceback" not in answer
    assert await rig.subscriptions() == []


# --- a digest of one service, and refused messages ---------------------------------------------


async def test_two_incidents_of_one_service_in_one_digest_keep_the_channel_subscribed(
    rig: Rig,
) -> None:
    await rig.say("discord", "subscribe", channel=CHANNEL_ID, service="svc")
    await rig.say("slack", "subscribe", channel="C42", service="svc")
    await rig.incident("inc-1", "API errors")
    rig.clock.advance(minutes=2)
    await rig.incident("inc-2", "Login errors")  # joins the first message: a digest
    edit = rig.discord.matching("PATCH", rf"/channels/{CHANNEL_ID}/messages/\d+")[-1].json
    custom_ids = [c["custom_id"] for row in edit["components"] for c in row["components"]]
    assert custom_ids == ["ob:status svc"]
    assert "2 of 2 services" in edit["embeds"][0]["title"]
    (update,) = rig.slack.calls_to("chat.update")
    assert "Login errors" in str(update.params["blocks"])
    assert all(s.enabled for s in await rig.subscriptions())
    assert {d.status for d in await rig.deliveries()} == {"done"}
    rig.clock.advance(minutes=60)
    await rig.incident("inc-3", "Later outage")  # and the channel still gets new alerts
    assert len(rig.discord_posts()) == 2
    assert len([m for m in rig.slack.messages if m.thread_ts is None]) == 2


async def test_a_refused_discord_message_is_sent_plain_once_and_never_pauses(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    await rig.say("discord", "subscribe", channel=CHANNEL_ID, service="svc")
    invalid = {
        "message": "Invalid Form Body",
        "code": 50035,
        "errors": {"embeds": {"0": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH"}]}}},
    }
    rig.discord.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 400, body=invalid)
    with caplog.at_level(logging.ERROR, logger="bot.delivery.attempt"):
        await rig.incident()
    refused, plain = rig.discord_posts()
    assert refused["components"]  # the rich message, with its buttons
    assert plain["components"] == []
    assert plain["embeds"][0]["title"] == "Service: Outage"
    assert "Status: investigating" in plain["embeds"][0]["description"]
    assert plain["nonce"] == refused["nonce"]  # the same delivery, still deduplicated
    assert len(rig.discord.messages[CHANNEL_ID]) == 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "BASE_TYPE_MAX_LENGTH" in errors[0].getMessage()
    assert "fake-token" not in errors[0].getMessage()
    assert (await rig.subscriptions())[0].enabled
    assert [d.status for d in await rig.deliveries()] == ["done"]


async def test_a_message_refused_twice_fails_that_delivery_but_not_the_channel(rig: Rig) -> None:
    await rig.say("discord", "subscribe", channel=CHANNEL_ID, service="svc")
    invalid = {"message": "Invalid Form Body", "code": 50035, "errors": {}}
    rig.discord.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 400, body=invalid, times=2)
    await rig.incident()
    assert len(rig.discord_posts()) == 2  # the message, then its plain version: no more
    assert [d.status for d in await rig.deliveries()] == ["failed"]
    assert (await rig.subscriptions())[0].enabled
    rig.clock.advance(minutes=60)
    await rig.incident("inc-2")
    assert len(rig.discord.messages[CHANNEL_ID]) == 1  # the next alert arrives


async def test_a_refused_slack_message_is_sent_plain_once_and_never_pauses(rig: Rig) -> None:
    await rig.say("slack", "subscribe", channel="C42", service="svc")
    rig.slack.fail("chat.postMessage", Failure(error="invalid_blocks"))
    await rig.incident()
    (plain,) = rig.slack.messages
    assert "Status: investigating" in plain.text
    assert not any(b["type"] == "actions" for b in plain.blocks)
    assert (await rig.subscriptions())[0].enabled


@pytest.mark.parametrize(
    ("status", "code"), [(403, 50013), (404, 10003), (401, 0)]
)  # missing access, unknown channel, token revoked
async def test_the_channels_own_permanent_errors_still_pause(
    rig: Rig, status: int, code: int
) -> None:
    await rig.say("discord", "subscribe", channel=CHANNEL_ID, service="svc")
    body = {"message": "no", "code": code}
    rig.discord.fail("POST", rf"/channels/{CHANNEL_ID}/messages", status, body=body)
    await rig.incident()
    assert len(rig.discord_posts()) == 1  # no plain retry: it is not our message's fault
    (subscription,) = await rig.subscriptions()
    assert not subscription.enabled
    assert f"HTTP {status}" in (subscription.disabled_reason or "")


async def test_slack_channel_errors_still_pause(rig: Rig) -> None:
    await rig.say("slack", "subscribe", channel="C42", service="svc")
    rig.slack.fail("chat.postMessage", Failure(error="channel_not_found"))
    await rig.incident()
    (subscription,) = await rig.subscriptions()
    assert not subscription.enabled
    assert len(rig.slack.calls_to("chat.postMessage")) == 1


# --- Retry-After values nobody should send ---------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-5", "1e999", "garbage", "http-date"])
async def test_a_bad_retry_after_delays_one_delivery_and_the_round_goes_on(
    rig: Rig, value: str
) -> None:
    await rig.say("discord", "subscribe", channel=CHANNEL_ID, service="svc")
    if value == "http-date":
        header = format_datetime(rig.clock.now + timedelta(seconds=90), usegmt=True)
        body: dict[str, object] = {"message": "You are being rate limited.", "global": False}
    else:
        header = value
        number: object = value if value == "garbage" else float(value)
        body = {"message": "You are being rate limited.", "retry_after": number, "global": False}
    headers = {"Retry-After": header, "X-RateLimit-Reset-After": header}
    rig.discord.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 429, headers=headers, body=body)
    await rig.incident()  # the round ends normally
    (delivery,) = await rig.deliveries()
    assert delivery.status == "pending"
    wait = delivery.next_attempt_at - rig.clock.now
    assert timedelta(0) <= wait <= timedelta(hours=1)
    if value == "http-date":
        assert wait == timedelta(seconds=90)
    rig.clock.now += wait + timedelta(seconds=1)
    await rig.worker.run_once()
    assert [d.status for d in await rig.deliveries()] == ["done"]
    assert len(rig.discord.messages[CHANNEL_ID]) == 1
