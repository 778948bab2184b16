"""Slack's HTTP mode end to end: signed requests into the real endpoint, answers at a fake Slack.

Shared by the Slack end-to-end tests (HTTP mode, forms and rights, charts, OAuth, web bodies).
"""

from __future__ import annotations

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
from aiohttp import web

from bot.adapters.slack import AUTH_WAIT_SECONDS, SlackAdapter, create_slack_adapter
from bot.app import open_app
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


def slash_command_body(
    text: str, *, user: str, team: str, response_url: str, trigger_id: str
) -> bytes:
    """The form body Slack POSTs for `/outage <text>` (the real fixture's other fields)."""
    fields = dict(parse_qsl(SLASH_BODY))
    fields.update(
        command="/outage",
        text=text,
        user_id=user,
        team_id=team,
        response_url=response_url,
        trigger_id=trigger_id,
    )
    return urlencode(fields).encode()


@dataclass
class Harness:
    slack: FakeSlack
    adapter: SlackAdapter
    clock: FakeClock
    url: str
    http: aiohttp.ClientSession

    def command_body(self, text: str, *, user: str = MEMBER, team: str = "T111") -> bytes:
        return slash_command_body(
            text,
            user=user,
            team=team,
            response_url=self.slack.response_url("cmd"),
            # Issued now: Slack lets a trigger_id open one modal within 3 s.
            trigger_id=self.slack.trigger_id(f"111.{next(_triggers)}.xxx"),
        )

    def button_body(self, action_id: str, *, user: str = MEMBER) -> bytes:
        payload = json.loads(json.dumps(BUTTON_PAYLOAD))
        payload["actions"][0]["action_id"] = action_id
        payload["user"]["id"] = user
        payload["response_url"] = self.slack.response_url("button")
        payload["trigger_id"] = self.slack.trigger_id(f"222.{next(_triggers)}.valid")
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
    tmp_path: Path,
    clock: FakeClock,
    slack: FakeSlack,
    services: int = 1,
    database_url: str | None = None,
    auth_wait_seconds: float = AUTH_WAIT_SECONDS,
    **overrides: Any,
) -> AsyncIterator[Harness]:
    urls = {"openai": "http://127.0.0.1:9/api/v2/summary.json"}
    urls.update(
        {f"svc{i}": f"http://127.0.0.1:9/s{i}/api/v2/summary.json" for i in range(1, services)}
    )
    settings = Settings(
        _env_file=None,
        database_url=database_url or f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=write_catalog(tmp_path / "catalog.toml", urls),
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SECRET,
        slack_api_url=slack.api_url,
        **overrides,
    )
    slack.users = {MEMBER: {"is_admin": False}, ADMIN: {"is_admin": True}}
    # Slack's 3 s and 30 min lifetimes on the test's clock: a busy machine cannot expire them.
    slack.clock = lambda: clock.now.timestamp()
    async with open_app(settings, clock=clock) as app:
        web_app = web.Application()
        adapter = create_slack_adapter(
            settings, app.deps, clock, web_app=web_app, auth_wait_seconds=auth_wait_seconds
        )
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
