"""The "share a workaround" form: a neutral `Form`, opened as a modal on Discord and Slack."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from urllib.parse import quote

import pytest

from bot.adapters.discord.render import render_form as discord_form
from bot.adapters.slack.render import render_form as slack_form
from bot.adapters.slack.render import submitted_values
from bot.core.commands import CommandRegistry, Form, FormField
from bot.core.textcommand import form_options
from bot.sources.catalog import ServiceDef
from cogs import workaround
from tests.conftest import FakeClock
from tests.discord_harness import (
    BUTTON,
    DiscordBot,
    embed_of,
    running_discord_bot,
    slash,
    stamp,
)
from tests.fakes.discord_server import GUILD_ID, FakeDiscord
from tests.fakes.slack_server import FakeSlack
from tests.slack_harness import MEMBER, Harness, start_harness, text_of

FORM_ID = "obf:workaround add openai-api"


def _registry() -> CommandRegistry:
    registry = CommandRegistry()
    workaround.setup(registry)
    return registry


def test_a_submitted_form_is_its_command_line_plus_the_fields() -> None:
    command, options = form_options(
        _registry(),
        "workaround add openai-api",
        {"title": "Use the batch API", "steps": "Send jobs", "link": "  ", "action": "remove"},
    )
    assert command == "workaround"
    # A blank optional field is left out; a value never overrides the command line's options.
    assert options == {
        "action": "add",
        "target": "openai-api",
        "title": "Use the batch API",
        "steps": "Send jobs",
    }


def test_the_workaround_form_has_title_steps_and_an_optional_link() -> None:
    reply = workaround.add_form(_service())
    assert reply.form is not None
    assert reply.form.command == "workaround add openai-api"
    assert [(f.name, f.long, f.required) for f in reply.form.fields] == [
        ("title", False, True),
        ("steps", True, True),
        ("link", False, False),
    ]
    assert reply.body  # what platforms without forms show
    too_long = Form(title="x", command="workaround add " + "x" * 300, fields=reply.form.fields)
    assert slack_form(too_long, channel_id="C1") is None


async def test_discord_modal_limits_are_respected() -> None:
    form = Form(title="T" * 60, command="status", fields=(FormField("a", "L" * 60),))
    modal = discord_form(form)
    assert modal is not None
    assert len(modal.title) <= 45
    assert discord_form(Form(title="x", command="x" * 100, fields=form.fields)) is None


def _service() -> ServiceDef:
    return cast(ServiceDef, SimpleNamespace(id="openai-api", name="OpenAI API"))


# --- Discord ---------------------------------------------------------------------------------


@pytest.fixture
async def discord_bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[DiscordBot]:
    async with FakeDiscord() as fake, running_discord_bot(fake, tmp_path, clock) as bot:
        yield bot


def _inputs(node: Any) -> list[dict[str, Any]]:
    """Every text input (type 4) in a modal's components, whatever wraps it."""
    if isinstance(node, list):
        return [i for item in node for i in _inputs(item)]
    if not isinstance(node, dict):
        return []
    found = [node] if node.get("type") == 4 else []
    return found + _inputs(node.get("components")) + _inputs(node.get("component"))


def _modal_submit(custom_id: str, values: dict[str, str]) -> dict[str, Any]:
    payload = copy.deepcopy(BUTTON)
    payload["guild_id"] = GUILD_ID
    payload["type"] = 5
    del payload["message"]
    payload["data"] = {
        "custom_id": custom_id,
        "components": [
            {"type": 1, "components": [{"type": 4, "custom_id": name, "value": value}]}
            for name, value in values.items()
        ],
    }
    return stamp(payload)


async def test_discord_button_opens_the_modal_and_its_submit_shares_the_workaround(
    discord_bot: DiscordBot,
) -> None:
    listing = await discord_bot.interact(slash("workaround", action="list", target="openai-api"))
    buttons = [c for row in listing["data"]["components"] for c in row["components"]]
    assert "ob:workaround form openai-api" in [b.get("custom_id") for b in buttons]

    click = copy.deepcopy(BUTTON)
    click["guild_id"] = GUILD_ID
    click["data"]["custom_id"] = "ob:workaround form openai-api"
    modal = await discord_bot.interact(stamp(click))
    assert modal["type"] == 9
    assert modal["data"]["custom_id"] == FORM_ID
    assert modal["data"]["title"] == "Share a workaround"
    inputs = {i["custom_id"]: i for i in _inputs(modal["data"]["components"])}
    assert list(inputs) == ["title", "steps", "link"]
    assert inputs["steps"]["style"] == 2  # paragraph
    assert inputs["link"]["required"] is False

    answer = await discord_bot.interact(
        _modal_submit(
            FORM_ID,
            {
                "title": "Use the batch API",
                "steps": "Send jobs to /v1/batches | it queues",
                "link": "https://example.com/guide",
            },
        )
    )
    assert answer["type"] == 4
    assert answer["data"]["flags"] & 64  # only the submitter sees it
    assert embed_of(answer)["title"] == "Workaround shared"

    listing = await discord_bot.interact(slash("workaround", action="list", target="openai-api"))
    shown = json.dumps(embed_of(listing)["fields"])
    assert "Use the batch API" in shown
    assert "it queues" in shown  # a | in the steps is kept (the form has no separators)
    assert "https://example.com/guide" in shown


async def test_discord_form_submit_with_a_bad_link_is_a_private_warning(
    discord_bot: DiscordBot,
) -> None:
    answer = await discord_bot.interact(
        _modal_submit(FORM_ID, {"title": "T", "steps": "S", "link": "javascript:alert(1)"})
    )
    assert answer["data"]["flags"] & 64
    assert "https://" in embed_of(answer)["description"]


async def test_discord_slash_command_can_answer_with_the_modal(discord_bot: DiscordBot) -> None:
    modal = await discord_bot.interact(slash("workaround", action="form", target="openai-api"))
    assert modal["type"] == 9
    assert modal["data"]["custom_id"] == FORM_ID


# --- Slack -----------------------------------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def slack_bot(tmp_path: Path, clock: FakeClock, slack: FakeSlack) -> AsyncIterator[Harness]:
    async for harness in start_harness(tmp_path, clock, slack):
        yield harness


def _view_submission(view: dict[str, Any], values: dict[str, str]) -> bytes:
    payload = {
        "type": "view_submission",
        "team": {"id": "T111", "domain": "workspace-domain"},
        "user": {"id": MEMBER, "username": "member", "name": "member", "team_id": "T111"},
        "api_app_id": "A111",
        "token": "verification_token",
        "trigger_id": "333.444.valid",
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


async def test_slack_button_opens_the_modal_and_its_submission_shares_the_workaround(
    slack_bot: Harness,
) -> None:
    listing = await slack_bot.command("workaround list openai")
    assert "ob:workaround form openai" in text_of(listing)

    status, ack = await slack_bot.post(slack_bot.button_body("ob:workaround form openai"))
    assert status == 200
    await slack_bot.adapter.app.wait_idle()
    opened = slack_bot.slack.calls_to("views.open")
    assert len(opened) == 1
    view = opened[0].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    assert view["type"] == "modal"
    assert view["callback_id"] == "obf:workaround add openai"
    # where to answer: the channel, and the click's response_url (works outside the channel)
    assert json.loads(view["private_metadata"]) == {
        "c": "C111",
        "r": slack_bot.slack.response_url("button"),
    }
    assert [b["block_id"] for b in view["blocks"]] == ["title", "steps", "link"]
    assert view["blocks"][1]["element"]["multiline"] is True
    assert view["blocks"][2]["optional"] is True
    assert opened[0].params["trigger_id"].endswith(".valid")

    status, ack = await slack_bot.post(
        _view_submission(
            view, {"title": "Use the batch API", "steps": "Send jobs to /v1/batches", "link": ""}
        )
    )
    assert (status, ack) == (200, "")  # the modal closes
    await slack_bot.adapter.app.wait_idle()
    answer = slack_bot.slack.responses[-1]
    assert (answer["_hook"], answer["response_type"]) == ("button", "ephemeral")
    assert "Workaround shared" in text_of(answer)
    assert not slack_bot.slack.calls_to("chat.postEphemeral")

    listing = await slack_bot.command("workaround list openai")
    assert "Use the batch API" in text_of(listing)


def test_slack_submitted_values_ignore_malformed_state() -> None:
    assert submitted_values({"state": {"values": {"a": {"value": {"value": 3}}}}}) == {}
    assert submitted_values(None) == {}
    assert submitted_values({"state": {"values": {"a": {"value": {"value": "x"}}}}}) == {"a": "x"}
