"""The recording sender's `find_sent` sees no more than the real senders do: one channel, one
thread, and only the latest messages there; a test cannot pass on a lookup a platform would miss.
"""

from __future__ import annotations

from bot.adapters.discord.sender import SCAN_LIMIT
from bot.core.commands import Reply
from bot.delivery.sender import ChannelRef
from tests.fakes.recording_sender import SCAN_DEPTH, RecordingSender

CHANNEL = ChannelRef(platform="test", community_id="g1", channel_id="c1")
OTHER_CHANNEL = ChannelRef(platform="test", community_id="g1", channel_id="c2")
OTHER_COMMUNITY = ChannelRef(platform="test", community_id="g2", channel_id="c1")
HELLO = Reply(title="Hello")


async def test_a_message_is_found_only_in_its_own_channel() -> None:
    sender = RecordingSender()
    sent = await sender.send(CHANNEL, HELLO, key="k")
    assert await sender.find_sent(CHANNEL, "k") == sent
    assert await sender.find_sent(OTHER_CHANNEL, "k") is None
    assert await sender.find_sent(OTHER_COMMUNITY, "k") is None


async def test_a_thread_reply_is_found_only_inside_its_thread() -> None:
    sender = RecordingSender()
    parent = await sender.send(CHANNEL, HELLO, key="post")
    reply = await sender.reply_in_thread(CHANNEL, parent, HELLO, key="reply")
    # A thread started from a message takes the message's id, as on Discord and Slack.
    assert reply.thread_id == parent.message_id
    assert await sender.find_sent(CHANNEL, "reply", thread_id=parent.message_id) == reply
    assert await sender.find_sent(CHANNEL, "reply") is None  # not in the channel itself
    assert await sender.find_sent(CHANNEL, "reply", thread_id="another-thread") is None
    assert await sender.find_sent(CHANNEL, "post", thread_id=parent.message_id) is None


async def test_only_the_latest_messages_are_scanned_as_deep_as_the_real_senders() -> None:
    assert SCAN_DEPTH == SCAN_LIMIT  # Discord reads 50, Slack 100: the shallower one rules
    sender = RecordingSender()
    old = await sender.send(CHANNEL, HELLO, key="old")
    for index in range(SCAN_DEPTH - 1):
        await sender.send(CHANNEL, HELLO, key=f"newer-{index}")
    assert await sender.find_sent(CHANNEL, "old") == old  # still among the latest 50
    await sender.send(CHANNEL, HELLO, key="one-more")
    assert await sender.find_sent(CHANNEL, "old") is None  # pushed past the scan
    assert sender.messages["old"] == old  # still recorded for the test's own assertions
