"""A reply is rendered once for every channel that shows it, and each channel still gets exactly
the bytes a rendering of its own would have given (its marker, its mention, its key)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest

from bot.adapters.discord import render as discord_render
from bot.adapters.discord import sender as discord_sender_module
from bot.adapters.discord.sender import DiscordSender, marker_for, nonce_for
from bot.adapters.slack import render as slack_render
from bot.adapters.slack import sender as slack_sender_module
from bot.adapters.slack import web_client
from bot.adapters.slack.sender import SlackSender
from bot.core.commands import Reply, ReplyField, Tone
from bot.core.mention import Mention, MentionKind
from bot.core.rich import When, rich
from bot.delivery.render_once import RenderOnce
from bot.delivery.sender import ChannelRef
from bot.settings import Settings
from tests.conftest import FakeClock
from tests.fakes.discord_server import GUILD_ID, FakeDiscord
from tests.fakes.slack_server import FakeSlack

CHANNELS = 6


def alert(clock: FakeClock) -> Reply:
    """Long enough to be cut to fit (the footer's length counts), with a relative time."""
    return Reply(
        title="OpenAI API: major outage",
        body=rich("Elevated errors on every model. " * 200),
        fields=(ReplyField("Components", rich("API, ChatGPT")),),
        footer=rich("Started ", When(clock() - timedelta(minutes=42))),
        tone=Tone.DANGER,
    )


def counting(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    """Count the calls of ``module.render_reply`` (the adapter's rendering)."""
    calls = [0]
    original: Callable[..., Any] = module.render_reply

    def render_reply(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "render_reply", render_reply)
    return calls


def same_bytes(sent: Any, expected: Any) -> bool:
    return json.dumps(sent) == json.dumps(expected)


@pytest.fixture
async def discord(clock: FakeClock) -> AsyncIterator[tuple[FakeDiscord, DiscordSender]]:
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        for number in range(CHANNELS):
            fake.add_channel(GUILD_ID, str(7000 + number))
        yield fake, DiscordSender(token="t", api_base=fake.api_base, session=session, clock=clock)


async def test_discord_renders_once_and_each_channel_gets_its_own_marker_and_mention(
    discord: tuple[FakeDiscord, DiscordSender], clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, sender = discord
    renders = counting(monkeypatch, discord_sender_module)
    reply = alert(clock)
    role = Mention(MentionKind.ROLE, "290926798626357111")
    mentions = [None, role] * (CHANNELS // 2)
    for number, mention in enumerate(mentions):
        channel = ChannelRef("discord", GUILD_ID, str(7000 + number))
        await sender.send(channel, reply, key=f"post:{number}", mention_role=mention)
    assert renders[0] == 2  # one per mention, not one per channel
    for number, mention in enumerate(mentions):
        key = f"post:{number}"
        call = fake.matching("POST", rf"/channels/{7000 + number}/messages")[0]
        own = discord_render.render_reply(reply, clock(), mention=mention, marker=marker_for(key))
        expected = own.payload() | {"nonce": nonce_for(key), "enforce_nonce": True}
        assert own.truncated  # the marker's length took part in the fit
        assert same_bytes(call.json, expected)


async def test_discord_thread_replies_and_edits_match_their_own_rendering(
    discord: tuple[FakeDiscord, DiscordSender], clock: FakeClock
) -> None:
    fake, sender = discord
    reply = alert(clock)
    parents = []
    for number in range(2):
        channel = ChannelRef("discord", GUILD_ID, str(7000 + number))
        parents.append((channel, await sender.send(channel, Reply(title="x"), key=f"p{number}")))
    threads = []
    for number, (channel, parent) in enumerate(parents):
        answer = await sender.reply_in_thread(channel, parent, reply, key=f"reply:{number}")
        threads.append(answer.thread_id)
        await sender.edit(channel, parent, reply)
    for number, (_, parent) in enumerate(parents):
        key = f"reply:{number}"
        posted = fake.matching("POST", rf"/channels/{threads[number]}/messages")[0]
        own = discord_render.render_reply(reply, clock(), marker=marker_for(key))
        expected = own.payload() | {"nonce": nonce_for(key), "enforce_nonce": True}
        assert same_bytes(posted.json, expected)
        edited = fake.matching("PATCH", rf"/channels/\d+/messages/{parent.message_id}")[0]
        expected_edit = discord_render.render_reply(reply, clock()).payload()
        del expected_edit["content"]
        assert same_bytes(edited.json, expected_edit)


async def test_slack_renders_once_per_mention_with_each_channels_key(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    renders = counting(monkeypatch, slack_sender_module)
    reply = alert(clock)
    group = Mention(MentionKind.SUBTEAM, "S0614TZR7")
    mentions = [group, None] * (CHANNELS // 2)
    async with FakeSlack() as slack:
        settings = Settings(_env_file=None, slack_bot_token="xoxb-s", slack_api_url=slack.api_url)
        sender = SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)
        for number, mention in enumerate(mentions):
            channel = ChannelRef("slack", "T1", f"C{number}")
            await sender.send(channel, reply, key=f"post:{number}", mention_role=mention)
        posts = slack.calls_to("chat.postMessage")
    assert renders[0] == 2
    for number, (call, mention) in enumerate(zip(posts, mentions, strict=True)):
        own = slack_render.render_reply(reply, clock(), mention=mention)
        assert call.params["channel"] == f"C{number}"
        assert call.params["metadata"]["event_payload"] == {"key": f"post:{number}"}
        assert same_bytes(call.params["blocks"], own.blocks)
        assert call.params["text"] == own.text


def test_a_rendering_is_made_again_once_stale_or_for_another_reply(clock: FakeClock) -> None:
    memo: RenderOnce[str] = RenderOnce(clock, fresh_for=timedelta(seconds=1))
    made: list[datetime] = []

    def render(now: datetime) -> str:
        made.append(now)
        return now.isoformat()

    reply = Reply(title="a")
    first = memo.get(reply, None, render)
    clock.advance(seconds=0.5)
    assert memo.get(reply, None, render) == first  # still fresh: reused
    assert memo.get(Reply(title="a"), None, render) == clock().isoformat()  # an equal copy
    clock.advance(seconds=0.5)
    assert memo.get(reply, None, render) == clock().isoformat()  # a second old: made anew
    assert memo.get(reply, "other parameters", render) == clock().isoformat()
    assert len(made) == 4


def test_the_oldest_rendering_is_dropped_first(clock: FakeClock) -> None:
    memo: RenderOnce[str] = RenderOnce(clock, max_entries=2)
    made: list[str | None] = []

    def render(reply: Reply) -> str:
        def make(_now: datetime) -> str:
            made.append(reply.title)
            return str(reply.title)

        return memo.get(reply, None, make)

    first, second, third = (Reply(title=str(n)) for n in range(3))
    for reply in (first, second, third, third, first):
        render(reply)
    assert made == ["0", "1", "2", "0"]  # the third reused; the first dropped when it came
