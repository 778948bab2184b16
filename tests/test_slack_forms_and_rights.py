"""Slack: admin rights from a configured user group, and form answers that reach the user even
in a channel the bot is not a member of (the command's response_url, kept in the modal)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import FakeClock
from tests.fakes.slack_server import Failure, FakeSlack
from tests.slack_harness import MEMBER, Harness, start_harness, text_of

ONCALL = "W333"
ADMIN_COMMAND = "service remove nothing-here"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        fake.usergroups = {"S0ONCALL": {"handle": "oncall", "users": [ONCALL]}}
        yield fake


@pytest.mark.parametrize("group", ["S0ONCALL", "@oncall"])
async def test_members_of_the_admin_group_may_run_admin_commands(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack, group: str
) -> None:
    async for bot in start_harness(tmp_path, clock, slack, slack_admin_group=group):
        slack.users[ONCALL] = {"is_admin": False}
        allowed = await bot.command(ADMIN_COMMAND, user=ONCALL)
        assert "Only server admins" not in text_of(allowed)
        assert "I don't track" in text_of(allowed)
        refused = await bot.command(ADMIN_COMMAND, user=MEMBER)
        assert "Only server admins" in text_of(refused)
        # The members are read once for both users, with the id found from the handle if needed.
        listed = slack.calls_to("usergroups.users.list")
        assert [c.params["usergroup"] for c in listed] == ["S0ONCALL"]
        assert len(slack.calls_to("usergroups.list")) == (0 if group.startswith("S") else 1)
        # Removed from the group: no longer an admin once the cached answer ages out.
        slack.usergroups["S0ONCALL"]["users"] = []
        bot.clock.advance(seconds=61)
        again = await bot.command(ADMIN_COMMAND, user=ONCALL)
        assert "Only server admins" in text_of(again)


async def test_a_failed_group_lookup_grants_nothing_and_is_not_remembered(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack, slack_admin_group="S0ONCALL"):
        slack.users[ONCALL] = {"is_admin": False}
        slack.fail("usergroups.users.list", Failure(error="internal_error", status=500))
        assert "Only server admins" in text_of(await bot.command(ADMIN_COMMAND, user=ONCALL))
        assert "Only server admins" not in text_of(await bot.command(ADMIN_COMMAND, user=ONCALL))


async def test_without_an_admin_group_no_group_is_asked(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        assert "Only server admins" in text_of(await bot.command(ADMIN_COMMAND, user=ONCALL))
        assert not slack.calls_to("usergroups.users.list")


# --- forms ---------------------------------------------------------------------------------


def _submission(view: dict[str, Any], values: dict[str, str]) -> bytes:
    payload = {
        "type": "view_submission",
        "team": {"id": "T111", "domain": "workspace"},
        "user": {"id": MEMBER, "username": "member", "name": "member", "team_id": "T111"},
        "api_app_id": "A111",
        "trigger_id": "555.666.valid",
        "view": {
            **view,
            "id": "V111",
            "team_id": "T111",
            "state": {
                "values": {
                    name: {"value": {"type": "plain_text_input", "value": value}}
                    for name, value in values.items()
                }
            },
        },
    }
    return f"payload={quote(json.dumps(payload))}".encode()


async def _open_form_from_the_command(bot: Harness) -> dict[str, Any]:
    status, ack = await bot.post(bot.command_body("workaround form openai"))
    assert (status, ack) == (200, "")
    await bot.adapter.app.wait_idle()
    [opened] = bot.slack.calls_to("views.open")
    view = opened.params["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


FIELDS = {"title": "Use the batch API", "steps": "Send jobs to /v1/batches", "link": ""}


async def test_a_form_from_a_channel_the_bot_is_not_in_is_answered_via_the_response_url(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        view = await _open_form_from_the_command(bot)
        assert json.loads(view["private_metadata"])["r"] == slack.response_url("cmd")
        slack.outside_channels.add("C111")  # chat.postEphemeral would fail: not a member
        assert await bot.post(_submission(view, FIELDS)) == (200, "")
        await bot.adapter.app.wait_idle()
        answer = slack.responses[-1]
        assert (answer["_hook"], answer["response_type"]) == ("cmd", "ephemeral")
        assert answer["replace_original"] is False
        assert "Workaround shared" in text_of(answer)
        assert not slack.calls_to("chat.postEphemeral")


async def test_when_the_response_url_is_gone_the_form_falls_back_to_post_ephemeral(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        view = await _open_form_from_the_command(bot)
        metadata = json.loads(view["private_metadata"])
        metadata["r"] = slack.base + "/expired-response-url"  # the fake answers 404 there
        view["private_metadata"] = json.dumps(metadata)
        assert await bot.post(_submission(view, FIELDS)) == (200, "")
        await bot.adapter.app.wait_idle()
        [posted] = slack.calls_to("chat.postEphemeral")
        assert (posted.params["channel"], posted.params["user"]) == ("C111", MEMBER)
        assert "Workaround shared" in json.dumps(posted.params)


async def test_a_modal_opened_before_the_upgrade_still_answers_in_its_channel(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for bot in start_harness(tmp_path, clock, slack):
        view = await _open_form_from_the_command(bot)
        view["private_metadata"] = "C111"  # the old format: the bare channel id
        assert await bot.post(_submission(view, FIELDS)) == (200, "")
        await bot.adapter.app.wait_idle()
        assert len(slack.calls_to("chat.postEphemeral")) == 1
