"""Socket Mode end to end: envelopes from a fake websocket server are acked and answered."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.adapters.slack import SlackAdapter, create_slack_adapter
from bot.app import App, open_app
from bot.errors import ConfigError
from bot.settings import Settings
from bot.store.models import SubscriptionRow
from bot.store.subscription_store import Scope
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.slack_server import FakeSlack
from tests.helpers import subscribe_channels, write_catalog

ENVELOPE = json.loads(
    (FIXTURES / "slack" / "slack_socketmode_envelope_slash_commands.json").read_text()
)
BUTTON_PAYLOAD = json.loads(
    (FIXTURES / "slack" / "slack_block_actions_payload_bolt-python.json").read_text()
)
APP_TOKEN = "xapp-1-A111-test"


@dataclass
class SocketBot:
    slack: FakeSlack
    adapter: SlackAdapter
    app: App
    clock: FakeClock

    async def deliver(self, envelope: dict[str, Any], *, responses: int) -> None:
        await self.slack.send_envelope(envelope)
        await self.slack.wait_until(lambda: self.slack.acked(envelope["envelope_id"]))
        await self.adapter.app.wait_idle()
        await self.slack.wait_until(lambda: len(self.slack.responses) >= responses)


def settings_for(tmp_path: Path, slack: FakeSlack, **extra: Any) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=write_catalog(
            tmp_path / "catalog.toml", {"openai": "http://127.0.0.1:9/api/v2/summary.json"}
        ),
        slack_bot_token="xoxb-test-token",
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        **extra,
    )


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SocketBot]:
    async with FakeSlack() as slack, open_app(settings_for(tmp_path, slack), clock=clock) as app:
        slack.users = {"U111": {"is_admin": False}}
        adapter = create_slack_adapter(app.settings, app.deps, clock, web_app=None)
        await adapter.start()
        try:
            await slack.wait_until(lambda: slack.socket_connected)
            yield SocketBot(slack=slack, adapter=adapter, app=app, clock=clock)
        finally:
            await adapter.stop()
            await adapter.stop()  # twice is fine


def command_envelope(slack: FakeSlack, envelope_id: str, text: str) -> dict[str, Any]:
    envelope = json.loads(json.dumps(ENVELOPE))
    envelope["envelope_id"] = envelope_id
    envelope["payload"].update(
        command="/outage",
        text=text,
        response_url=slack.response_url(envelope_id),
        trigger_id=f"{envelope_id}.trigger",
    )
    return envelope


async def test_the_socket_url_comes_from_apps_connections_open(bot: SocketBot) -> None:
    opened = bot.slack.calls_to("apps.connections.open")
    assert [c.token for c in opened] == [APP_TOKEN]
    assert bot.adapter.http is None


async def test_a_slash_command_envelope_is_acked_and_answered(bot: SocketBot) -> None:
    await bot.deliver(command_envelope(bot.slack, "env-1", "status openai"), responses=1)
    ack = next(a for a in bot.slack.acks if a.get("envelope_id") == "env-1")
    assert ack == {"envelope_id": "env-1"}
    response = bot.slack.responses[0]
    assert response["_hook"] == "env-1"
    assert "Openai" in response["blocks"][0]["text"]["text"]


async def test_help_and_admin_refusal_over_socket_mode(bot: SocketBot) -> None:
    await bot.deliver(command_envelope(bot.slack, "env-2", ""), responses=1)
    assert "/status" in json.dumps(bot.slack.responses[0]["blocks"])
    await bot.deliver(
        command_envelope(bot.slack, "env-3", "service add X https://x.example"), responses=2
    )
    assert "Only server admins" in json.dumps(bot.slack.responses[1]["blocks"])


async def test_an_interactive_envelope_runs_the_button_command(bot: SocketBot) -> None:
    payload = json.loads(json.dumps(BUTTON_PAYLOAD))
    payload["actions"][0]["action_id"] = "ob:status"
    payload["response_url"] = bot.slack.response_url("click")
    envelope = {
        "envelope_id": "env-4",
        "type": "interactive",
        "payload": payload,
        "accepts_response_payload": False,
    }
    await bot.deliver(envelope, responses=1)
    assert bot.slack.responses[0]["_hook"] == "click"
    assert "Service status" in json.dumps(bot.slack.responses[0]["blocks"])


async def test_a_retried_envelope_is_acked_but_not_run_again(bot: SocketBot) -> None:
    first = command_envelope(bot.slack, "env-5", "status")
    await bot.deliver(first, responses=1)
    again = {**first, "envelope_id": "env-6", "retry_attempt": 1, "retry_reason": "timeout"}
    same = {**first, "envelope_id": "env-7"}
    for envelope in (again, same):
        await bot.slack.send_envelope(envelope)
        await bot.slack.wait_until(lambda e=envelope: bot.slack.acked(e["envelope_id"]))
    await bot.adapter.app.wait_idle()
    assert len(bot.slack.responses) == 1


def event_envelope(envelope_id: str, event: dict[str, Any], **retry: Any) -> dict[str, Any]:
    """An Events API envelope as Socket Mode delivers it: a first delivery says attempt 0."""
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": 0,
        "retry_reason": "",
        "payload": {
            "type": "event_callback",
            "team_id": "T111",
            "api_app_id": "A111",
            "event_id": f"Ev-{envelope_id}",
            "event_time": 1,
            "event": event,
        },
        **retry,
    }


async def subscribed_teams(bot: SocketBot) -> list[str]:
    async with bot.app.deps.sessions() as session:
        return [row.community_id for row in (await session.exec(select(SubscriptionRow))).all()]


@pytest.mark.parametrize(
    "event", [{"type": "app_uninstalled"}, {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}}]
)
async def test_a_first_delivery_with_retry_attempt_zero_is_handled(
    bot: SocketBot, event: dict[str, Any]
) -> None:
    await subscribe_channels(bot.app.engine, bot.clock, [(Scope("slack", "T111"), "C1")])
    envelope = event_envelope("ev-1", event)
    await bot.slack.send_envelope(envelope)
    await bot.slack.wait_until(lambda: bot.slack.acked("ev-1"))
    await bot.adapter.app.wait_idle()
    assert await subscribed_teams(bot) == []


async def test_a_real_event_retry_is_acked_and_dropped(bot: SocketBot) -> None:
    await subscribe_channels(bot.app.engine, bot.clock, [(Scope("slack", "T111"), "C1")])
    retry = event_envelope(
        "ev-2", {"type": "app_uninstalled"}, retry_attempt=1, retry_reason="timeout"
    )
    await bot.slack.send_envelope(retry)
    await bot.slack.wait_until(lambda: bot.slack.acked("ev-2"))
    await bot.adapter.app.wait_idle()
    assert await subscribed_teams(bot) == ["T111"]


async def test_a_first_command_with_retry_attempt_zero_is_answered(bot: SocketBot) -> None:
    envelope = {**command_envelope(bot.slack, "env-8", "status"), "retry_attempt": 0}
    await bot.deliver({**envelope, "retry_reason": ""}, responses=1)
    assert bot.slack.responses[0]["_hook"] == "env-8"


def test_a_bot_token_in_place_of_the_app_token_is_a_config_error(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, slack_bot_token="xoxb-1", slack_app_token="xoxb-wrong-kind")
    with pytest.raises(ConfigError, match="xapp"):
        create_slack_adapter(settings, object(), lambda: None, web_app=None)  # type: ignore[arg-type]


async def test_a_refresh_requested_disconnect_reconnects_and_keeps_serving(bot: SocketBot) -> None:
    assert bot.slack.socket_connections == 1
    await bot.slack.send_disconnect("refresh_requested")
    await bot.slack.wait_until(lambda: bot.slack.socket_connections == 2)
    assert len(bot.slack.calls_to("apps.connections.open")) == 2
    await bot.slack.close_socket(0)  # Slack closes the old one a little later
    await bot.slack.wait_until(lambda: bot.slack.open_sockets == 1)
    await bot.deliver(command_envelope(bot.slack, "env-9", "status openai"), responses=1)
    assert bot.adapter.socket_mode is not None
    assert bot.adapter.socket_mode.connected


async def test_a_form_whose_trigger_expired_is_answered_with_text(
    bot: SocketBot, caplog: pytest.LogCaptureFixture
) -> None:
    seconds = [100.0]
    bot.slack.clock = lambda: seconds[0]
    bot.slack.holds["views.open"] = release = asyncio.Event()
    envelope = command_envelope(bot.slack, "env-10", "workaround form openai")
    await bot.slack.send_envelope(envelope)
    await bot.slack.wait_until(lambda: bool(bot.slack.calls_to("views.open")))
    seconds[0] += 3.5  # the bot took longer than Slack's 3 s to open the modal
    release.set()
    await bot.slack.wait_until(lambda: bot.slack.acked("env-10"))
    await bot.adapter.app.wait_idle()
    await bot.slack.wait_until(lambda: len(bot.slack.responses) >= 1)
    [answer] = bot.slack.responses
    assert answer["_hook"] == "env-10"
    assert answer["text"]
    [warning] = [r for r in caplog.records if "modal" in r.getMessage()]
    assert warning.getMessage() == "could not open a Slack modal: expired_trigger_id"
    assert warning.exc_info is None  # Slack's 3 s are routine: no traceback
