"""Requests the documentation shows work as shown, against the bot's real wiring."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.app import open_app
from bot.runtime.metrics import Metrics
from bot.runtime.operations import install_web
from bot.settings import Settings
from bot.web.server import WebServer, create_web_app
from tests.conftest import REPO
from tests.helpers import post_json

ADMIN_TOKEN = "documented-example-admin-token-0123456789"
RECEIVER = "http://127.0.0.1:9/hook"  # never contacted: no alert is open to send
EXAMPLE = re.compile(r"`POST /api/v1/webhooks` with `(\{.*?\})`")


def documented_webhook_request() -> dict[str, object]:
    """The JSON body docs/webhooks.md shows for creating a webhook through the admin API."""
    found = EXAMPLE.search((REPO / "docs" / "webhooks.md").read_text())
    assert found is not None, "docs/webhooks.md no longer shows a POST /api/v1/webhooks example"
    body: dict[str, object] = json.loads(found[1])
    return body


async def test_the_documented_webhook_request_is_accepted(tmp_path: Path) -> None:
    body = documented_webhook_request()
    assert body["url"] == "https://…"  # the placeholder this test fills in
    body["url"] = RECEIVER
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        api_admin_token=ADMIN_TOKEN,
        allow_private_webhooks=True,
    )
    async with open_app(settings) as app:  # the built-in catalog, as documented
        web_app = create_web_app(clock=app.clock, deps=app.deps)
        install_web(
            web_app,
            settings=settings,
            deps=app.deps,
            engine=app.engine,
            clock=app.clock,
            metrics=Metrics(),
        )
        server = WebServer(web_app, host="127.0.0.1", port=0)
        await server.start()
        try:
            url = f"http://127.0.0.1:{server.bound_port}/api/v1/webhooks"
            status, answer = await post_json(url, body, token=ADMIN_TOKEN)
        finally:
            await server.stop()
    assert status == 201, answer
    assert answer["url"] == RECEIVER
    assert answer["services"] == body["services"]
