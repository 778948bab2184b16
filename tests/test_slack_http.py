"""HTTP mode end to end: signed requests into the real aiohttp endpoint, answers at a fake Slack."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.adapters.slack import SlackAdapter, create_slack_adapter
from bot.adapters.slack.app import UNKNOWN_TEAM_TEXT
from bot.app import open_app
from bot.core.commands import CommandSpec, Context, Reply
from bot.core.rich import rich
from bot.deps import AppDeps
from bot.settings import Settings
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.slack_server import FakeSlack
from tests.helpers import write_catalog

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLASH_BODY = (FIXTURES / "slack" / "slack_slash_command_form_body_bolt-python.txt").read_text()
BUTTON_PAYLOAD = json.loads(
    (FIXTURES / "slack" / "slack_block_actions_payload_bolt-python.json").read_text()
)
URL_VERIFICATION = (
    FIXTURES / "slack" / "slack_events_api_url_verification_python-slack-events-api.json"
).read_bytes()
MEMBER, ADMIN = "W111", "W222"
_triggers = itertools.count(1)


def signature(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    """What Slack puts in X-Slack-Signature: v0=HMAC-SHA256("v0:{ts}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Harness:
    slack: FakeSlack
    adapter: SlackAdapter
    clock: FakeClock
    url: str
    http: aiohttp.ClientSession

    def command_body(self, text: str, *, user: str = MEMBER, team: str = "T111") -> bytes:
        fields = dict(parse_qsl(SLASH_BODY))
        fields.update(
            command="/outage",
            text=text,
            user_id=user,
            team_id=team,
            response_url=self.slack.response_url("cmd"),
            trigger_id=f"111.{next(_triggers)}.xxx",
        )
        return urlencode(fields).encode()

    def button_body(self, action_id: str, *, user: str = MEMBER) -> bytes:
        payload = json.loads(json.dumps(BUTTON_PAYLOAD))
        payload["actions"][0]["action_id"] = action_id
        payload["user"]["id"] = user
        payload["response_url"] = self.slack.response_url("button")
        payload["trigger_id"] = f"222.{next(_triggers)}.valid"
        return f"payload={quote(json.dumps(payload))}".encode()

    async def post(
        self,
        body: bytes,
        *,
        timestamp: str | None = None,
        signed_body: bytes | None = None,
        secret: str = SECRET,
        headers: dict[str, str] | None = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> tuple[int, str]:
        ts = timestamp if timestamp is not None else str(int(self.clock.now.timestamp()))
        sent_headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(signed_body or body, ts, secret),
            **(headers or {}),
        }
        async with self.http.post(self.url, data=body, headers=sent_headers) as response:
            return response.status, await response.text()

    async def command(self, text: str, **kwargs: Any) -> dict[str, Any]:
        """Run a slash command; return what the bot posted to the response_url."""
        before = len(self.slack.responses)
        status, ack = await self.post(self.command_body(text, **kwargs))
        assert (status, ack) == (200, "")
        await self.adapter.app.wait_idle()
        await self.slack.wait_until(lambda: len(self.slack.responses) > before)
        return self.slack.responses[-1]


def text_of(response: dict[str, Any]) -> str:
    return json.dumps(response.get("blocks", []), ensure_ascii=False) + response.get("text", "")


async def start_harness(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack, services: int = 1, **overrides: Any
) -> AsyncIterator[Harness]:
    urls = {"openai": "http://127.0.0.1:9/api/v2/summary.json"}
    urls.update(
        {f"svc{i}": f"http://127.0.0.1:9/s{i}/api/v2/summary.json" for i in range(1, services)}
    )
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=write_catalog(tmp_path / "catalog.toml", urls),
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        **overrides,
    )
    slack.users = {MEMBER: {"is_admin": False}, ADMIN: {"is_admin": True}}
    async with open_app(settings, clock=clock) as app:
        web_app = web.Application()
        adapter = create_slack_adapter(settings, app.deps, clock, web_app=web_app)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await adapter.start()
        try:
            async with aiohttp.ClientSession() as http:
                url = f"http://127.0.0.1:{port}/slack/events"
                yield Harness(slack=slack, adapter=adapter, clock=clock, url=url, http=http)
        finally:
            await adapter.stop()
            await runner.cleanup()


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock, slack: FakeSlack) -> AsyncIterator[Harness]:
    async for harness in start_harness(tmp_path, clock, slack):
        yield harness


async def test_status_overview_is_answered_in_channel(bot: Harness) -> None:
    response = await bot.command("status")
    assert response["_hook"] == "cmd"
    assert response["response_type"] == "in_channel"
    assert response["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Service status", "emoji": True},
    }
    assert "*Openai*" in text_of(response)
    assert [c.method for c in bot.slack.calls] == ["auth.test"]  # no admin lookup needed


async def test_status_of_one_service(bot: Harness) -> None:
    response = await bot.command("status openai")
    assert "Openai" in response["blocks"][0]["text"]["text"]


@pytest.mark.parametrize("text", ["", "help", "  HELP  "])
async def test_help_is_private_and_hides_admin_commands_from_members(
    bot: Harness, text: str
) -> None:
    response = await bot.command(text)
    assert response["response_type"] == "ephemeral"
    assert "/status" in text_of(response)
    assert "/service" not in text_of(response)
    lookups = bot.slack.calls_to("users.info")
    assert [(c.params["user"], c.token) for c in lookups] == [(MEMBER, "xoxb-test-token")]


async def test_help_shows_admin_commands_to_admins(bot: Harness) -> None:
    assert "/service" in text_of(await bot.command("help", user=ADMIN))


async def test_admin_command_is_refused_for_a_member(bot: Harness) -> None:
    response = await bot.command("service add Acme https://status.acme.example")
    assert "Only server admins" in text_of(response)
    assert response["response_type"] == "ephemeral"
    assert bot.adapter.app._deps.catalog.resolve("acme") is None


async def test_admin_rights_come_from_users_info_and_are_cached(bot: Harness) -> None:
    first = await bot.command("service remove nothing-here", user=ADMIN)
    second = await bot.command("service remove nothing-here", user=ADMIN)
    for response in (first, second):
        assert "Only server admins" not in text_of(response)
        assert "I don't track" in text_of(response)
    assert len(bot.slack.calls_to("users.info")) == 1
    bot.clock.advance(seconds=61)
    await bot.command("service remove nothing-here", user=ADMIN)
    assert len(bot.slack.calls_to("users.info")) == 2


async def test_a_button_click_runs_its_command_as_the_clicking_user(bot: Harness) -> None:
    status, ack = await bot.post(bot.button_body("ob:status openai"))
    assert (status, ack) == (200, "")
    await bot.adapter.app.wait_idle()
    await bot.slack.wait_until(lambda: bool(bot.slack.responses))
    response = bot.slack.responses[0]
    assert response["_hook"] == "button"
    assert response["replace_original"] is False
    assert "Openai" in response["blocks"][0]["text"]["text"]


async def test_a_link_button_click_is_acked_and_does_nothing(bot: Harness) -> None:
    assert await bot.post(bot.button_body("oblink:0")) == (200, "")
    await bot.adapter.app.wait_idle()
    assert bot.slack.responses == []


@pytest.mark.parametrize(
    "case", ["wrong secret", "stale", "future", "tampered", "no signature", "bad timestamp"]
)
async def test_unverified_requests_get_401_and_change_nothing(bot: Harness, case: str) -> None:
    body = bot.command_body("status")
    now = int(bot.clock.now.timestamp())
    if case == "wrong secret":
        result = await bot.post(body, secret="not-the-secret")
    elif case == "stale":  # a replay of a request captured six minutes ago
        result = await bot.post(body, timestamp=str(now - 301))
    elif case == "future":
        result = await bot.post(body, timestamp=str(now + 301))
    elif case == "tampered":
        result = await bot.post(body.replace(b"status", b"help"), signed_body=body)
    elif case == "no signature":
        result = await bot.post(body, headers={"X-Slack-Signature": ""})
    else:
        result = await bot.post(body, timestamp="12ab")
    assert result == (401, '{"error": "invalid request"}')
    await bot.adapter.app.wait_idle()
    assert bot.slack.calls == []
    assert bot.slack.responses == []


async def test_a_request_just_inside_the_window_is_accepted(bot: Harness) -> None:
    now = int(bot.clock.now.timestamp())
    assert await bot.post(bot.command_body("help"), timestamp=str(now - 299)) == (200, "")


async def test_slack_retries_never_act_twice(bot: Harness) -> None:
    body = bot.command_body("status")
    await bot.command("help")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert await bot.post(body, headers=retry) == (200, "")
    assert await bot.post(body) == (200, "")
    assert await bot.post(body) == (200, "")  # the same trigger_id again
    await bot.adapter.app.wait_idle()
    await bot.slack.wait_until(lambda: len(bot.slack.responses) == 2)
    assert len(bot.slack.responses) == 2


async def test_mentions_in_user_text_arrive_escaped(bot: Harness) -> None:
    response = await bot.command("status <!channel> <@U123> <!here|here> @everyone")
    text = text_of(response)
    assert "&lt;@U123&gt;" in text
    for live in ("<!channel>", "<@U123>", "<!here", "@everyone"):
        assert live not in text


async def test_an_unknown_team_gets_an_error_and_nothing_runs(bot: Harness) -> None:
    status, ack = await bot.post(bot.command_body("status", team="T999"))
    assert status == 200
    assert json.loads(ack) == {"text": UNKNOWN_TEAM_TEXT, "response_type": "ephemeral"}
    await bot.adapter.app.wait_idle()
    assert bot.slack.responses == []
    assert bot.slack.calls_to("users.info") == []


@pytest.mark.parametrize("body", [b"garbage", b"payload=%7Bnot-json", b"\xff\xfe"])
async def test_malformed_bodies_get_400(bot: Harness, body: bytes) -> None:
    status, _ = await bot.post(body)
    assert status == 400
    assert bot.slack.responses == []


async def test_huge_bodies_are_refused_before_verification(bot: Harness) -> None:
    status, _ = await bot.post(b"text=" + b"x" * 300_000)
    assert status == 413


async def test_url_verification_answers_the_challenge(bot: Harness) -> None:
    status, body = await bot.post(URL_VERIFICATION, content_type="application/json")
    assert status == 200
    assert "valid_challenge_token" in body


async def test_app_uninstalled_event_is_acked(bot: Harness) -> None:
    event = {
        "type": "event_callback",
        "team_id": "T111",
        "api_app_id": "A111",
        "event_id": "Ev111",
        "event_time": 1,
        "event": {"type": "app_uninstalled"},
    }
    status, _ = await bot.post(json.dumps(event).encode(), content_type="application/json")
    assert status == 200


async def test_an_oversize_answer_stays_within_slack_limits(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack
) -> None:
    async for harness in start_harness(tmp_path, clock, slack, services=250):
        response = await harness.command("status")
        blocks = response["blocks"]
        assert 2 < len(blocks) <= 50
        for block in blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
        assert len(response["text"]) <= 3000
        assert "Svc249" in text_of(response)


async def test_the_ack_comes_before_slow_work(bot: Harness) -> None:
    release = asyncio.Event()

    async def slow(ctx: Context[AppDeps]) -> Reply:
        await release.wait()
        return Reply(body=rich("finally"))

    bot.adapter.app._registry.add(CommandSpec(name="slow", description="slow", handler=slow))
    assert await bot.post(bot.command_body("slow")) == (200, "")
    assert bot.adapter.app.pending == 1
    assert bot.slack.responses == []
    release.set()
    await bot.adapter.app.wait_idle()
    await bot.slack.wait_until(lambda: bool(bot.slack.responses))
    assert "finally" in text_of(bot.slack.responses[0])


async def test_with_installs_on_the_bot_tokens_own_workspace_still_works_without_a_row(
    tmp_path: Path, clock: FakeClock, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bolt would turn itself into its own OAuth app on seeing these; ours keeps the token.
    monkeypatch.setenv("SLACK_CLIENT_ID", "111.222")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "client-secret")
    monkeypatch.setenv("PUBLIC_URL", "https://bot.example.com")
    async for harness in start_harness(tmp_path, clock, slack):
        response = await harness.command("status")
        assert response["blocks"][0]["text"]["text"] == "Service status"
        assert [c.token for c in slack.calls_to("auth.test")] == ["xoxb-test-token"]
