"""The fake Slack refuses what Slack refuses, and our sender lives within it.

The first half pins the fake's rules (blocks through slack_sdk's models, tokens, trigger_id and
response_url lifetimes, membership, pages) with the real slack_sdk client, so a test passing
against the fake means something; the second half is the product against those rules.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import web_client
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.token_auth import TokenAuthorization
from bot.core.alert_render import AlertView, render_digest
from bot.core.commands import Reply
from bot.core.rich import rich
from bot.delivery.sender import ChannelRef
from bot.settings import Settings
from tests.conftest import FakeClock
from tests.fakes.slack_server import Failure, FakeSlack
from tests.helpers import incident_view

TOKEN = "xoxb-limits"
CHANNEL = ChannelRef(platform="slack", community_id="T111", channel_id="C42")


class Seconds:
    """The fake's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(clock=Seconds()) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=TOKEN, base_url=slack.api_url)


async def refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(SlackApiError) as caught:
        await call
    data: dict[str, Any] = caught.value.response.data
    return data


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# --- the fake's rules -----------------------------------------------------------------------


async def test_a_too_long_section_is_refused_in_slacks_words(client: AsyncWebClient) -> None:
    blocks = [section("ok"), section("x" * 3001)]
    answer = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert answer["error"] == "invalid_blocks"
    [error] = answer["errors"]
    assert error.endswith("[json-pointer:/blocks/1]")
    assert "3000 characters" in error
    assert answer["response_metadata"]["messages"] == [f"[ERROR] {error}"]


@pytest.mark.parametrize(
    ("blocks", "expected"),
    [
        ([section("a")] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
        ([{"type": "nonsense"}], "failed to match all allowed schemas [json-pointer:/blocks/0]"),
        ([section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    ],
)
async def test_blocks_slack_refuses(
    client: AsyncWebClient, blocks: list[dict[str, Any]], expected: str
) -> None:
    answer = await refusal(client.chat_update(channel="C1", ts="1.1", text="t", blocks=blocks))
    assert (answer["error"], answer["errors"]) == ("invalid_blocks", [expected])


async def test_action_ids_must_be_unique_across_a_message(client: AsyncWebClient) -> None:
    button = {"type": "button", "text": {"type": "plain_text", "text": "Go"}, "action_id": "a"}
    blocks = [{"type": "actions", "elements": [button]}, {"type": "actions", "elements": [button]}]
    answer = await refusal(client.chat_postMessage(channel="C1", text="t", blocks=blocks))
    assert answer["errors"] == ["duplicate action_id [json-pointer:/blocks/1/elements/0/action_id]"]


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"text": "no channel"}, "channel_not_found"),
        ({"channel": "C1"}, "no_text"),
        (
            {"channel": "C1", "text": "t", "metadata": {"event_type": "x"}},
            "invalid_metadata_schema",
        ),
        (
            {"channel": "C1", "text": "t", "metadata": {"event_payload": {}}},
            "invalid_metadata_schema",
        ),
    ],
)
async def test_messages_slack_refuses(
    client: AsyncWebClient, arguments: dict[str, Any], error: str
) -> None:
    answer = await refusal(client.api_call("chat.postMessage", json=arguments))
    assert answer["error"] == error


async def test_blocks_without_a_text_fallback_are_a_violation(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    # api_call, because chat_postMessage itself warns first (and warnings are errors here).
    await client.api_call("chat.postMessage", json={"channel": "C1", "blocks": [section("b")]})
    assert slack.violations == ["chat.postMessage without a text fallback"]
    slack.violations.clear()  # otherwise leaving the fake fails this test, as intended


@pytest.mark.parametrize(
    ("token", "method", "error"),
    [
        (None, "auth.test", "not_authed"),
        ("not-a-token", "auth.test", "invalid_auth"),
        ("xoxb-revoked", "chat.postMessage", "token_revoked"),
        (TOKEN, "apps.connections.open", "not_allowed_token_type"),
        ("xapp-1-app", "chat.postMessage", "invalid_auth"),
    ],
)
async def test_tokens_are_checked(
    slack: FakeSlack, token: str | None, method: str, error: str
) -> None:
    slack.revoked_tokens.add("xoxb-revoked")
    client = AsyncWebClient(token=token, base_url=slack.api_url)
    answer = await refusal(client.api_call(method, json={"channel": "C1", "text": "t"}))
    assert answer["error"] == error
    assert not slack.messages


async def test_post_ephemeral_needs_the_bot_in_the_channel(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.outside_channels.add("C9")
    answer = await refusal(client.chat_postEphemeral(channel="C9", user="U1", text="hi"))
    assert answer["error"] == "not_in_channel"
    assert (await client.chat_postEphemeral(channel="C1", user="U1", text="hi"))["ok"]


MODAL = {
    "type": "modal",
    "title": {"type": "plain_text", "text": "Share a workaround"},
    "submit": {"type": "plain_text", "text": "Share"},
    "blocks": [section("Steps")],
}


async def test_a_trigger_id_opens_one_modal_within_three_seconds(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    clock: Any = slack.clock
    used, late = slack.trigger_id("1.used"), slack.trigger_id("2.late")
    assert (await client.views_open(trigger_id=used, view=MODAL))["ok"]
    assert (await refusal(client.views_open(trigger_id=used, view=MODAL)))[
        "error"
    ] == "exchanged_trigger_id"
    clock.now += 3.5
    answer = await refusal(client.views_open(trigger_id=late, view=MODAL))
    assert answer["error"] == "expired_trigger_id"


async def test_a_modal_slack_refuses(slack: FakeSlack, client: AsyncWebClient) -> None:
    too_long = {**MODAL, "title": {"type": "plain_text", "text": "x" * 25}}
    answer = await refusal(client.views_open(trigger_id=slack.trigger_id("3"), view=too_long))
    assert answer["error"] == "invalid_arguments"
    assert "[json-pointer:/view]" in answer["response_metadata"]["messages"][0]


async def test_a_response_url_takes_five_answers_within_thirty_minutes(slack: FakeSlack) -> None:
    clock: Any = slack.clock
    busy, old = slack.response_url("busy"), slack.response_url("old")
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(6):
            async with http.post(busy, json={"text": "hi"}) as response:
                statuses.append((response.status, await response.text()))
        clock.now += 30 * 60 + 1
        async with http.post(old, json={"text": "late"}) as response:
            late = (response.status, await response.text())
    assert statuses == [(200, "ok")] * 5 + [(404, "used_url")]
    assert late == (404, "expired_url")


async def test_history_comes_in_pages_with_cursors(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    for n in range(5):
        await client.chat_postMessage(channel="C1", text=f"m{n}")
    slack.history_page_size = 2
    first = await client.conversations_history(channel="C1", limit=10)
    assert [m["text"] for m in first["messages"]] == ["m4", "m3"]
    assert first["has_more"] is True
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_history(channel="C1", limit=10, cursor=cursor)
    assert [m["text"] for m in second["messages"]] == ["m2", "m1"]


# --- the product within them ----------------------------------------------------------------


@pytest.fixture
def sender(slack: FakeSlack, clock: FakeClock) -> SlackSender:
    settings = Settings(_env_file=None, slack_bot_token=TOKEN, slack_api_url=slack.api_url)
    return SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)


async def test_find_sent_follows_cursors_when_slack_answers_short_pages(
    slack: FakeSlack, sender: SlackSender
) -> None:
    ours = await sender.send(CHANNEL, Reply(title="OpenAI: elevated errors"), key="alert-7:C42")
    for n in range(30):
        await sender.send(CHANNEL, Reply(title=f"later {n}"), key=f"other-{n}:C42")
    slack.history_page_size = 10  # Slack may return fewer than asked, with a cursor
    assert await sender.find_sent(CHANNEL, "alert-7:C42") == ours
    pages = slack.calls_to("conversations.history")
    assert len(pages) == 4
    assert all(int(p.params["limit"]) <= 100 for p in pages)


async def test_find_sent_follows_cursors_in_a_thread(slack: FakeSlack, sender: SlackSender) -> None:
    parent = await sender.send(CHANNEL, Reply(title="parent"), key="p")
    for n in range(12):
        await sender.reply_in_thread(CHANNEL, parent, Reply(body=rich(f"update {n}")), key=f"u{n}")
    slack.history_page_size = 5
    found = await sender.find_sent(CHANNEL, "u11", thread_id=parent.message_id)
    assert found is not None
    assert found.message_id == slack.messages[-1].ts


async def test_find_sent_stops_at_its_scan_depth(slack: FakeSlack, clock: FakeClock) -> None:
    settings = Settings(_env_file=None, slack_bot_token=TOKEN, slack_api_url=slack.api_url)
    shallow = SlackSender(web_client(settings), clock=clock, history_limit=6)
    await shallow.send(CHANNEL, Reply(title="old"), key="old")
    for n in range(8):
        await shallow.send(CHANNEL, Reply(title=f"new {n}"), key=f"new-{n}")
    slack.history_page_size = 4
    assert await shallow.find_sent(CHANNEL, "old") is None
    assert [int(c.params["limit"]) for c in slack.calls_to("conversations.history")] == [6, 2]


def _incident(title: str) -> AlertView:
    now = FakeClock().now
    return incident_view(
        "openai",
        title,
        now,
        service_name="OpenAI",
        latest_update="Looking into it",
        latest_update_at=now,
    )


async def test_a_digest_of_two_incidents_of_one_service_is_accepted(
    slack: FakeSlack, sender: SlackSender
) -> None:
    first = _incident("Elevated errors on the API")
    second = dataclasses.replace(first, title="ChatGPT login failures")
    await sender.send(CHANNEL, render_digest([first, second]), key="digest-1:C42")
    [message] = slack.messages
    buttons = [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [e["action_id"] for e in buttons if "url" not in e] == ["ob:status openai"]


async def test_a_failing_auth_test_is_asked_again_with_backoff_and_never_blocks(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    slack.fail("auth.test", Failure(error="internal_error", times=2))
    slack.holds["auth.test"] = release = asyncio.Event()
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    auth = TokenAuthorization(client, sleep=sleep)
    early = await auth.authorize(enterprise_id=None, team_id="T111")  # what an ack gets
    assert auth.is_provisional(early)
    release.set()
    settled = await asyncio.wait_for(auth.settled(), 5)
    assert (settled.team_id, settled.bot_token) == ("T111", TOKEN)
    assert waits == [1.0, 2.0]
    assert len(slack.calls_to("auth.test")) == 3
    await auth.close()
