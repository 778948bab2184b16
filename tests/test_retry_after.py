"""One Retry-After reading for every sender: finite, within [0, an hour], or nothing usable."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest

from bot.adapters.discord.sender import DiscordSender
from bot.adapters.slack import web_client
from bot.adapters.slack.sender import DEFAULT_RETRY_AFTER, SlackSender
from bot.core.commands import Reply
from bot.delivery.retry_after import MAX_RETRY_AFTER, clamp_wait, parse_retry_after
from bot.delivery.sender import ChannelRef, TransientDeliveryError
from bot.settings import Settings
from tests.conftest import FakeClock
from tests.fakes.discord_server import CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.fakes.slack_server import Failure, FakeSlack

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TEXT = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=CHANNEL_ID)
ALERT = Reply(title="Outage")


def http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2", 2.0),
        ("2.5", 2.5),
        (" 7 ", 7.0),
        (1.25, 1.25),
        (3, 3.0),
        ("0", 0.0),
        ("-5", 0.0),  # "in the past": now
        (-5.0, 0.0),
        ("86400", MAX_RETRY_AFTER),
        (1e300, MAX_RETRY_AFTER),
        ("nan", None),
        ("NaN", None),
        (math.nan, None),
        ("inf", None),
        ("-inf", None),
        (math.inf, None),
        ("1e999", None),  # overflows to inf
        ("soon", None),
        ("", None),
        (None, None),
        (True, None),
        ("9" * 100, None),
        (http_date(NOW + timedelta(seconds=90)), 90.0),
        (http_date(NOW - timedelta(hours=1)), 0.0),
        (http_date(NOW + timedelta(days=3)), MAX_RETRY_AFTER),
        ("Fri, 27 Nov 2026 12:01:00", 60.0),  # no zone: GMT, as HTTP says
        ("Fri, 99 Nov 2026 12:01:00 GMT", None),
    ],
)
def test_parse_retry_after(value: object, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_a_date_without_a_clock_is_unusable() -> None:
    assert parse_retry_after(http_date(NOW), now=None) is None


def test_clamp_wait() -> None:
    assert clamp_wait(math.nan) is None
    assert clamp_wait(-math.inf) is None
    assert clamp_wait(-1) == 0.0
    assert clamp_wait(10_000, cap=600) == 600


@pytest.fixture
async def discord(clock: FakeClock) -> AsyncIterator[tuple[FakeDiscord, DiscordSender]]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        sender = DiscordSender(
            token="fake-token",
            api_base=fake.api_base,
            session=session,
            clock=clock,
            monotonic=lambda: 1000.0,
        )
        yield fake, sender


BAD = ["nan", "inf", "-inf", "-5", "garbage", "1e999"]


@pytest.mark.parametrize("value", BAD)
async def test_discord_429_with_a_bad_retry_after_gives_a_finite_wait(
    discord: tuple[FakeDiscord, DiscordSender], value: str
) -> None:
    fake, sender = discord
    headers = {"Retry-After": value, "X-RateLimit-Reset-After": value}
    # JSON numbers as Python writes them (NaN, Infinity), or the raw text when it is no number.
    number: object = value if value == "garbage" else float(value)
    body = {"message": "You are being rate limited.", "retry_after": number}
    fake.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 429, headers=headers, body=body)
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(TEXT, ALERT, key="k")
    wait = caught.value.retry_after
    assert wait is not None
    assert math.isfinite(wait)
    assert 0 <= wait <= MAX_RETRY_AFTER


async def test_discord_429_with_an_http_date(
    discord: tuple[FakeDiscord, DiscordSender], clock: FakeClock
) -> None:
    fake, sender = discord
    headers = {"Retry-After": http_date(clock.now + timedelta(seconds=42))}
    fake.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 429, headers=headers, body={})
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(TEXT, ALERT, key="k")
    assert caught.value.retry_after == 42.0


@pytest.mark.parametrize("value", ["inf", "nan", "1e999"])
async def test_a_bad_bucket_reset_does_not_block_the_bucket_forever(
    discord: tuple[FakeDiscord, DiscordSender], value: str
) -> None:
    fake, sender = discord
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": value}
    answer = {"id": "1300000000000000001", "channel_id": CHANNEL_ID}
    fake.fail("POST", rf"/channels/{CHANNEL_ID}/messages", 200, headers=headers, body=answer)
    await sender.send(TEXT, ALERT, key="first")
    second = await sender.send(TEXT, ALERT, key="second")  # no wait was read from that header
    assert second.message_id == fake.messages[CHANNEL_ID][0]["id"]


@pytest.mark.parametrize("value", [*BAD, "Fri, 27 Nov 2026 12:01:00 GMT"])
async def test_slack_429_with_a_bad_retry_after_waits_the_default(
    clock: FakeClock, value: str
) -> None:
    async with FakeSlack() as slack:
        settings = Settings(_env_file=None, slack_bot_token="xoxb-r", slack_api_url=slack.api_url)
        sender = SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)
        # The fake writes Retry-After as given (real Slack sends whole seconds).
        limited = Failure(error="ratelimited", status=429, retry_after=value)  # type: ignore[arg-type]
        slack.fail("chat.postMessage", limited)
        channel = ChannelRef(platform="slack", community_id="T111", channel_id="C1")
        with pytest.raises(TransientDeliveryError) as caught:
            await sender.send(channel, ALERT, key="k")
    assert caught.value.retry_after == DEFAULT_RETRY_AFTER
