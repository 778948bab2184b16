"""DiscordSender against the fake Discord REST API: nonces, threads, forums, errors, 429s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest

from bot.adapters.discord.sender import (
    FORUM_SCAN_LIMIT,
    DiscordSender,
    GlobalRateLimiter,
    marker_for,
    nonce_for,
)
from bot.core.commands import Button, Reply, ReplyField, Tone
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Quoted, rich
from bot.delivery.sender import (
    ChannelRef,
    PayloadRejectedError,
    PermanentDeliveryError,
    SentMessage,
    TransientDeliveryError,
)
from tests.conftest import FakeClock
from tests.fakes.discord_form_body import embed_total
from tests.fakes.discord_server import CHANNEL_ID, FORUM_CHANNEL_ID, GUILD_ID, FakeDiscord

TEXT = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=CHANNEL_ID)
FORUM = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=FORUM_CHANNEL_ID)
ROLE = "290926798626357111"
ROLE_MENTION = Mention(MentionKind.ROLE, ROLE)
ALERT = Reply(title="OpenAI API: major outage", body=rich("Elevated errors."), tone=Tone.DANGER)


@dataclass
class Harness:
    fake: FakeDiscord
    sender: DiscordSender
    now: list[float]


@pytest.fixture
async def harness(clock: FakeClock) -> AsyncIterator[Harness]:
    now = [1000.0]
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        sender = DiscordSender(
            token="fake-token",
            api_base=fake.api_base,
            session=session,
            clock=clock,
            monotonic=lambda: now[0],
        )
        yield Harness(fake, sender, now)


async def test_send_uses_a_nonce_and_mentions_only_the_alert_role(harness: Harness) -> None:
    sent = await harness.sender.send(TEXT, ALERT, key="alert-1:chan", mention_role=ROLE_MENTION)
    call = harness.fake.matching("POST", rf"/channels/{CHANNEL_ID}/messages")[0]
    assert call.json["nonce"] == nonce_for("alert-1:chan")
    assert len(call.json["nonce"]) <= 25
    assert call.json["enforce_nonce"] is True
    assert call.json["content"] == f"<@&{ROLE}>"
    assert call.json["allowed_mentions"] == {"parse": [], "roles": [int(ROLE)]}
    assert call.headers["Authorization"] == "Bot fake-token"
    assert sent.message_id == harness.fake.messages[CHANNEL_ID][0]["id"]


async def test_a_repeated_send_is_deduplicated_by_the_nonce(harness: Harness) -> None:
    first = await harness.sender.send(TEXT, ALERT, key="k")
    second = await harness.sender.send(TEXT, ALERT, key="k")
    assert first == second
    assert len(harness.fake.messages[CHANNEL_ID]) == 1


async def test_user_text_pings_nobody(harness: Harness) -> None:
    reply = Reply(title="Report", body=rich("Someone said: ", Quoted("@everyone <@&1> hi")))
    await harness.sender.send(TEXT, reply, key="k")
    body = harness.fake.matching("POST", rf"/channels/{CHANNEL_ID}/messages")[0].json
    assert body["allowed_mentions"] == {"parse": []}
    assert body["content"] == ""
    description = body["embeds"][0]["description"]
    assert "@everyone" not in description
    assert "<@&1>" not in description


async def test_edit_patches_the_message(harness: Harness) -> None:
    sent = await harness.sender.send(TEXT, ALERT, key="k")
    await harness.sender.edit(TEXT, sent, Reply(title="Resolved after 3 h", tone=Tone.OK))
    patch = harness.fake.matching("PATCH", rf"/channels/{CHANNEL_ID}/messages/{sent.message_id}")
    assert patch[0].json["embeds"][0]["title"] == "Resolved after 3 h"
    assert harness.fake.messages[CHANNEL_ID][0]["embeds"][0]["title"] == "Resolved after 3 h"


async def test_thread_replies_start_one_thread_then_reuse_it(harness: Harness) -> None:
    sent = await harness.sender.send(TEXT, ALERT, key="k")
    first = await harness.sender.reply_in_thread(TEXT, sent, Reply(body=rich("u1")), key="k1")
    assert first.thread_id == sent.message_id
    parent = SentMessage(sent.message_id, thread_id=first.thread_id)
    await harness.sender.reply_in_thread(TEXT, parent, Reply(body=rich("u2")), key="k2")
    assert len(harness.fake.matching("POST", r"/channels/\d+/messages/\d+/threads")) == 1
    assert len(harness.fake.messages[first.thread_id]) == 2


async def test_a_reply_after_a_crash_reuses_the_thread_it_already_started(
    harness: Harness,
) -> None:
    sent = await harness.sender.send(TEXT, ALERT, key="k")
    first = await harness.sender.reply_in_thread(TEXT, sent, Reply(body=rich("u1")), key="k1")
    # The crash lost the thread id: the message is known only by its own id again.
    second = await harness.sender.reply_in_thread(TEXT, sent, Reply(body=rich("u2")), key="k2")
    assert second.thread_id == first.thread_id == sent.message_id
    assert len(harness.fake.messages[sent.message_id]) == 2


async def test_forum_channel_gets_a_post_and_replies_go_into_it(harness: Harness) -> None:
    sent = await harness.sender.send(FORUM, ALERT, key="k")
    assert sent.thread_id is not None
    post = harness.fake.matching("POST", rf"/channels/{FORUM_CHANNEL_ID}/threads")[0]
    assert post.json["name"] == "OpenAI API: major outage"
    reply = await harness.sender.reply_in_thread(FORUM, sent, Reply(body=rich("u")), key="k2")
    assert reply.thread_id == sent.thread_id
    await harness.sender.edit(FORUM, sent, Reply(title="Resolved"))
    assert harness.fake.matching("PATCH", rf"/channels/{sent.thread_id}/messages/\d+")


async def test_find_sent_recognises_our_message_after_a_crash(harness: Harness) -> None:
    await harness.sender.send(TEXT, Reply(title="other"), key="other")
    sent = await harness.sender.send(TEXT, ALERT, key="lost")
    assert await harness.sender.find_sent(TEXT, "lost") == SentMessage(sent.message_id)
    assert await harness.sender.find_sent(TEXT, "never-sent") is None


async def test_429_is_transient_with_retry_after_and_the_bucket_waits(harness: Harness) -> None:
    harness.fake.rate_limit("POST", rf"/channels/{CHANNEL_ID}/messages", retry_after=2.5)
    with pytest.raises(TransientDeliveryError) as caught:
        await harness.sender.send(TEXT, ALERT, key="k")
    assert caught.value.retry_after == 2.5
    calls = len(harness.fake.calls)
    with pytest.raises(TransientDeliveryError):  # bucket known empty: no request at all
        await harness.sender.send(TEXT, ALERT, key="k")
    assert len(harness.fake.calls) == calls
    harness.now[0] += 3
    await harness.sender.send(TEXT, ALERT, key="k")


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (500, 0, TransientDeliveryError),
        (502, 0, TransientDeliveryError),
        (403, 50001, PermanentDeliveryError),
        (404, 10003, PermanentDeliveryError),
        (400, 50013, PermanentDeliveryError),
        (400, 50035, PayloadRejectedError),  # Invalid Form Body: our bug, not the channel's
        (400, 50006, PayloadRejectedError),  # Cannot send an empty message: ours too
    ],
)
async def test_errors_are_classified(
    harness: Harness, status: int, code: int, error: type[Exception]
) -> None:
    harness.fake.fail(
        "POST", r"/channels/\d+/messages", status, body={"message": "x", "code": code}
    )
    with pytest.raises(error) as caught:
        await harness.sender.send(TEXT, ALERT, key="k")
    assert type(caught.value) is error


async def test_an_embed_just_under_6000_stays_under_with_the_footer_marker(
    harness: Harness,
) -> None:
    # 200 + 4,000 + 1,000 + 1 + 790 = 5,991 before the delivery marker joins the footer.
    reply = Reply(
        title="t" * 200,
        body=rich("b" * 4000),
        fields=(ReplyField("n", rich("v" * 790)),),
        footer=rich("f" * 1000),
    )
    sent = await harness.sender.send(TEXT, reply, key="near-limit")
    (stored,) = harness.fake.messages[CHANNEL_ID]
    assert stored["id"] == sent.message_id
    embed = stored["embeds"][0]
    assert embed_total(embed) <= 6000  # counted as Discord counts, by the fake
    assert embed["footer"]["text"].endswith(marker_for("near-limit"))
    stored["nonce"] = None  # found again by the marker alone, as after a crash
    assert await harness.sender.find_sent(TEXT, "near-limit") == SentMessage(sent.message_id)


async def test_duplicate_action_buttons_reach_discord_once(harness: Harness) -> None:
    reply = Reply(
        title="Digest",
        buttons=(
            Button(label="Service", action="status svc"),
            Button(label="Service", action="status svc"),
            Button(label="Other", action="status other"),
        ),
    )
    await harness.sender.send(TEXT, reply, key="k")  # the fake refuses repeated custom_ids
    (stored,) = harness.fake.messages[CHANNEL_ID]
    ids = [c["custom_id"] for row in stored["components"] for c in row["components"]]
    assert ids == ["ob:status svc", "ob:status other"]


async def test_unknown_channel_is_permanent(harness: Harness) -> None:
    gone = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id="1")
    with pytest.raises(PermanentDeliveryError):
        await harness.sender.send(gone, ALERT, key="k")


async def test_chart_goes_as_an_attachment(harness: Harness) -> None:
    reply = Reply(title="Reports", image_png=b"\x89PNG fake", image_alt="reports per minute")
    await harness.sender.send(TEXT, reply, key="k")
    call = harness.fake.matching("POST", rf"/channels/{CHANNEL_ID}/messages")[0]
    assert call.files == ("chart.png",)
    assert call.json["embeds"][0]["image"]["url"] == "attachment://chart.png"


async def test_global_limiter_spaces_requests_beyond_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = GlobalRateLimiter(3, monotonic=lambda: now[0], sleep=sleep)
    for _ in range(4):
        await limiter.acquire()
    assert slept == [1.0]


async def test_find_sent_looks_inside_the_thread_for_a_lost_reply(harness: Harness) -> None:
    parent = await harness.sender.send(TEXT, ALERT, key="parent")
    reply = await harness.sender.reply_in_thread(TEXT, parent, Reply(title="Update"), key="reply-1")
    assert reply.thread_id is not None
    found = await harness.sender.find_sent(TEXT, "reply-1", thread_id=reply.thread_id)
    assert found is not None
    assert found.message_id == reply.message_id
    assert await harness.sender.find_sent(TEXT, "reply-1") is None  # not in the channel itself
    assert await harness.sender.find_sent(TEXT, "reply-1", thread_id="424242424242") is None


async def test_a_forum_post_lost_in_a_crash_is_found_and_not_posted_again(
    harness: Harness,
) -> None:
    await harness.sender.send(FORUM, Reply(title="Older post"), key="older")
    posted = await harness.sender.send(FORUM, ALERT, key="lost-post")
    # The process dies before recording the post; a fresh sender knows nothing of the channel.
    async with aiohttp.ClientSession() as session:
        restarted = DiscordSender(
            token="fake-token",
            api_base=harness.fake.api_base,
            session=session,
            clock=FakeClock(),
            monotonic=lambda: harness.now[0],
        )
        found = await restarted.find_sent(FORUM, "lost-post")
        if found is None:  # what the outbox worker does on a retry
            await restarted.send(FORUM, ALERT, key="lost-post")
        assert await restarted.find_sent(FORUM, "never-posted") is None
    assert found == posted
    assert len(harness.fake.matching("POST", rf"/channels/{FORUM_CHANNEL_ID}/threads")) == 2
    assert harness.fake.matching("GET", rf"/guilds/{GUILD_ID}/threads/active")
    # Only the forum's own posts are opened, newest first, and the search stops at the match.
    opened = harness.fake.matching("GET", r"/channels/\d+/messages/\d+")
    assert opened[0].path == f"/channels/{posted.thread_id}/messages/{posted.thread_id}"


async def test_forum_search_skips_threads_of_other_channels_and_is_bounded(
    harness: Harness,
) -> None:
    async with aiohttp.ClientSession() as session:
        sender = DiscordSender(
            token="fake-token",
            api_base=harness.fake.api_base,
            session=session,
            clock=FakeClock(),
            # this test makes more requests than the real per-second limit allows
            limiter=GlobalRateLimiter(1000, monotonic=lambda: harness.now[0]),
            monotonic=lambda: harness.now[0],
        )
        await _fill_and_search(harness, sender)


async def _fill_and_search(harness: Harness, sender: DiscordSender) -> None:
    text_parent = await sender.send(TEXT, ALERT, key="text-parent")
    await sender.reply_in_thread(TEXT, text_parent, Reply(title="u"), key="in-thread")
    for n in range(FORUM_SCAN_LIMIT + 5):
        await sender.send(FORUM, Reply(title=f"post {n}"), key=f"post-{n}")
    assert await sender.find_sent(FORUM, "in-thread") is None
    opened = harness.fake.matching("GET", r"/channels/\d+/messages/\d+")
    assert len(opened) == FORUM_SCAN_LIMIT
    assert all(c.path.split("/")[2] != text_parent.message_id for c in opened)
