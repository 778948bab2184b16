"""Discord thread replies carry the delivery's nonce, so a retried reply is not posted twice.

The outbox retries a reply whose answer was lost (a timeout, a crash between the POST and the
stored "done"); Discord's ``enforce_nonce`` then returns the first message instead of a copy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from bot.adapters.discord.sender import DiscordSender, nonce_for
from bot.core.commands import Reply, Tone
from bot.core.rich import rich
from bot.delivery.sender import ChannelRef
from tests.conftest import FakeClock
from tests.fakes.discord_server import CHANNEL_ID, FORUM_CHANNEL_ID, GUILD_ID, FakeDiscord

TEXT = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=CHANNEL_ID)
FORUM = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=FORUM_CHANNEL_ID)
ALERT = Reply(title="OpenAI API: major outage", body=rich("Elevated errors."), tone=Tone.DANGER)
UPDATE = Reply(title="Update", body=rich("A fix is rolling out."), tone=Tone.INFO)


@pytest.fixture
async def discord(clock: FakeClock) -> AsyncIterator[tuple[FakeDiscord, DiscordSender]]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        sender = DiscordSender(
            token="fake-token", api_base=fake.api_base, session=session, clock=clock
        )
        yield fake, sender


@pytest.mark.parametrize("channel", [TEXT, FORUM], ids=["text", "forum"])
async def test_a_retried_thread_reply_is_posted_once(
    discord: tuple[FakeDiscord, DiscordSender], channel: ChannelRef
) -> None:
    fake, sender = discord
    alert = await sender.send(channel, ALERT, key="alert-1")
    first = await sender.reply_in_thread(channel, alert, UPDATE, key="update-1")
    assert first.thread_id is not None
    # The same delivery again, as after a lost answer: Discord hands back the first message.
    again = await sender.reply_in_thread(channel, first, UPDATE, key="update-1")
    assert again == first
    replies = [m for m in fake.messages[first.thread_id] if m["id"] != alert.message_id]
    assert [m["id"] for m in replies] == [first.message_id]
    posts = fake.matching("POST", rf"/channels/{first.thread_id}/messages")
    assert [(p.json["nonce"], p.json["enforce_nonce"]) for p in posts] == [
        (nonce_for("update-1"), True)
    ] * 2


async def test_different_thread_replies_are_all_posted(
    discord: tuple[FakeDiscord, DiscordSender],
) -> None:
    fake, sender = discord
    alert = await sender.send(TEXT, ALERT, key="alert-1")
    first = await sender.reply_in_thread(TEXT, alert, UPDATE, key="update-1")
    second = await sender.reply_in_thread(TEXT, first, UPDATE, key="update-2")
    assert first.thread_id is not None
    assert first.message_id != second.message_id
    assert len(fake.messages[first.thread_id]) == 2
