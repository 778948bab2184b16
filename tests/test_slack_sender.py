"""The outbox's Slack sender against the fake Web API: send, edit, thread, find, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.adapters.slack import web_client
from bot.adapters.slack.sender import EVENT_TYPE, SlackSender
from bot.core.commands import Reply
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Quoted, rich
from bot.delivery.sender import (
    ChannelRef,
    PermanentDeliveryError,
    PlatformSender,
    SentMessage,
    TransientDeliveryError,
)
from bot.settings import Settings
from tests.conftest import FakeClock
from tests.fakes.slack_server import Failure, FakeSlack

CHANNEL = ChannelRef(platform="slack", community_id="T111", channel_id="C42")
ALERT = Reply(title="OpenAI: elevated errors", body=rich("Investigating. ", Quoted("<!here>")))


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
def sender(slack: FakeSlack, clock: FakeClock) -> SlackSender:
    settings = Settings(_env_file=None, slack_bot_token="xoxb-sender", slack_api_url=slack.api_url)
    return SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)


def test_it_is_a_platform_sender(sender: SlackSender) -> None:
    typed: PlatformSender = sender  # mypy would reject a mismatch
    assert typed.platform == "slack"


async def test_send_posts_blocks_with_metadata_and_the_bot_token(
    sender: SlackSender, slack: FakeSlack
) -> None:
    group = Mention(MentionKind.SUBTEAM, "S0614TZR7")
    sent = await sender.send(CHANNEL, ALERT, key="alert-1:C42", mention_role=group)
    call = slack.calls_to("chat.postMessage")[0]
    assert call.token == "xoxb-sender"
    assert call.params["channel"] == "C42"
    assert call.params["metadata"] == {
        "event_type": EVENT_TYPE,
        "event_payload": {"key": "alert-1:C42"},
    }
    assert call.params["blocks"][0]["type"] == "header"
    assert call.params["text"].startswith("<!subteam^S0614TZR7> ")
    assert "<!here>" not in str(call.params["blocks"])
    assert sent == SentMessage(message_id=slack.messages[0].ts)


async def test_edit_updates_the_same_message(sender: SlackSender, slack: FakeSlack) -> None:
    sent = await sender.send(CHANNEL, ALERT, key="k")
    await sender.edit(CHANNEL, sent, Reply(title="Resolved after 3 h 12 min"))
    call = slack.calls_to("chat.update")[0]
    assert (call.params["channel"], call.params["ts"]) == ("C42", sent.message_id)
    assert slack.messages[0].blocks[0]["text"]["text"] == "Resolved after 3 h 12 min"


async def test_thread_replies_go_under_the_parent(sender: SlackSender, slack: FakeSlack) -> None:
    parent = await sender.send(CHANNEL, ALERT, key="k")
    first = await sender.reply_in_thread(CHANNEL, parent, Reply(body=rich("Update 1")), key="k/1")
    assert first.thread_id == parent.message_id
    parent_with_thread = SentMessage(parent.message_id, thread_id=first.thread_id)
    await sender.reply_in_thread(CHANNEL, parent_with_thread, Reply(body=rich("2")), key="k/2")
    threads = [c.params["thread_ts"] for c in slack.calls_to("chat.postMessage")[1:]]
    assert threads == [parent.message_id, parent.message_id]


async def test_find_sent_finds_our_message_by_key(sender: SlackSender, slack: FakeSlack) -> None:
    await sender.send(CHANNEL, ALERT, key="other")
    sent = await sender.send(CHANNEL, ALERT, key="wanted")
    await sender.send(ChannelRef("slack", "T111", "C99"), ALERT, key="wanted-elsewhere")
    assert await sender.find_sent(CHANNEL, "wanted") == SentMessage(message_id=sent.message_id)
    assert await sender.find_sent(CHANNEL, "never-sent") is None
    call = slack.calls_to("conversations.history")[0]
    assert call.params["include_all_metadata"] in {"1", "true", True}


async def test_429_is_transient_with_retry_after(sender: SlackSender, slack: FakeSlack) -> None:
    slack.fail("chat.postMessage", Failure(error="ratelimited", status=429, retry_after=7))
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.send(CHANNEL, ALERT, key="k")
    assert caught.value.retry_after == 7.0
    assert slack.messages == []
    await sender.send(CHANNEL, ALERT, key="k")  # the next try goes through
    assert len(slack.messages) == 1


@pytest.mark.parametrize(
    "failure",
    [
        Failure(error="internal_error", status=500),
        Failure(status=502, raw_body=b"<html>Bad gateway</html>"),
        Failure(status=503, raw_body=b""),
    ],
)
async def test_5xx_is_transient(sender: SlackSender, slack: FakeSlack, failure: Failure) -> None:
    slack.fail("chat.postMessage", failure)
    with pytest.raises(TransientDeliveryError):
        await sender.send(CHANNEL, ALERT, key="k")


@pytest.mark.parametrize(
    "error",
    [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "token_revoked",
        "account_inactive",
    ],
)
async def test_permanent_errors(sender: SlackSender, slack: FakeSlack, error: str) -> None:
    slack.fail("chat.postMessage", Failure(error=error))
    with pytest.raises(PermanentDeliveryError, match=error):
        await sender.send(CHANNEL, ALERT, key="k")


async def test_edit_and_find_map_errors_too(sender: SlackSender, slack: FakeSlack) -> None:
    slack.fail("chat.update", Failure(error="channel_not_found"))
    with pytest.raises(PermanentDeliveryError):
        await sender.edit(CHANNEL, SentMessage("1.2"), ALERT)
    slack.fail("conversations.history", Failure(error="ratelimited", status=429, retry_after=3))
    with pytest.raises(TransientDeliveryError) as caught:
        await sender.find_sent(CHANNEL, "k")
    assert caught.value.retry_after == 3.0


async def test_an_unreachable_slack_is_transient(clock: FakeClock) -> None:
    settings = Settings(
        _env_file=None, slack_bot_token="xoxb-x", slack_api_url="http://127.0.0.1:9/api/"
    )
    sender = SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)
    with pytest.raises(TransientDeliveryError):
        await sender.send(CHANNEL, ALERT, key="k")


async def test_find_sent_looks_in_the_thread_for_a_lost_reply(
    sender: SlackSender, slack: FakeSlack
) -> None:
    parent = await sender.send(CHANNEL, ALERT, key="parent")
    reply = await sender.reply_in_thread(CHANNEL, parent, Reply(body=rich("Update")), key="reply-1")
    found = await sender.find_sent(CHANNEL, "reply-1", thread_id=parent.message_id)
    assert found == SentMessage(message_id=reply.message_id)
    assert await sender.find_sent(CHANNEL, "reply-1") is None  # replies are not top-level
    assert slack.calls_to("conversations.replies")[0].params["ts"] == parent.message_id
