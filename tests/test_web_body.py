"""Request bodies that arrive in several TCP segments are read whole, up to their cap.

A raw socket sends the headers and the first part of the body, waits until the handler has
started reading, then sends the rest: a reader that takes only what is buffered sees half.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.slack import create_slack_adapter
from bot.adapters.slack.http import MAX_BODY_BYTES
from bot.app import open_app
from bot.core.events import EventKind
from bot.settings import Settings
from bot.web.server import WebServer
from bot.web.webhooks import MAX_WEBHOOK_BYTES
from tests.conftest import FakeClock
from tests.fakes.slack_server import FakeSlack
from tests.helpers import (
    INCIDENT_NOTIFICATION,
    WEBHOOK_SECRET,
    statuspage_webhook_server,
    stored_event_kinds,
    write_catalog,
)
from tests.slack_harness import SECRET as SLACK_SECRET
from tests.slack_harness import signature

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Server:
    """A web application on a free port, telling when a handler starts on a request."""

    port: int
    handler_started: asyncio.Event


def signalling(started: asyncio.Event) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # Set just before the handler runs: it reads the body without yielding first, so the
        # second part, sent only after this, is certainly not buffered yet.
        started.set()
        return await handler(request)

    return middleware


async def post_in_two_writes(
    server: Server,
    path: str,
    body: bytes,
    *,
    headers: str = "Content-Type: application/json\r\n",
    chunked: bool = False,
) -> tuple[int, bytes]:
    """POST over a raw socket: headers and half the body, then (once read) the other half."""
    server.handler_started.clear()
    half = len(body) // 2
    parts = [body[:half], body[half:]]
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
    if chunked:
        parts = [b"%x\r\n%s\r\n" % (len(p), p) for p in parts]
        parts[1] += b"0\r\n\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{framing}\r\n"
        f"{headers}\r\n"
    ).encode()
    async with asyncio.timeout(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(head + parts[0])
            await writer.drain()
            await server.handler_started.wait()
            writer.write(parts[1])
            await writer.drain()
            answer = await reader.read()
        finally:
            writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.fixture
async def hook_server(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Server]:
    started = asyncio.Event()
    async with statuspage_webhook_server(
        engine, clock, middlewares=[signalling(started)]
    ) as server:
        assert server.bound_port is not None
        yield Server(server.bound_port, started)


def large_notification(size: int) -> bytes:
    notification = json.loads(json.dumps(INCIDENT_NOTIFICATION))
    update = notification["incident"]["incident_updates"][0]
    update["body"] = "We are looking into it. " * (size // 24)
    return json.dumps(notification).encode()


async def test_a_150_kb_statuspage_push_in_two_segments_is_accepted(
    hook_server: Server, engine: AsyncEngine
) -> None:
    body = large_notification(150_000)
    assert len(body) > 150_000
    status, answer = await post_in_two_writes(
        hook_server, f"/hooks/statuspage/{WEBHOOK_SECRET}", body
    )
    assert (status, json.loads(answer)) == (200, {"ok": True})
    assert await stored_event_kinds(engine) == [EventKind.INCIDENT_OPENED]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_push_over_the_cap_is_refused_with_413(
    hook_server: Server, engine: AsyncEngine, chunked: bool
) -> None:
    body = b" " * (MAX_WEBHOOK_BYTES + 10)
    path = f"/hooks/statuspage/{WEBHOOK_SECRET}"
    status, _ = await post_in_two_writes(hook_server, path, body, chunked=chunked)
    assert status == 413
    assert await stored_event_kinds(engine) == []


async def test_a_chunked_push_under_the_cap_is_accepted(
    hook_server: Server, engine: AsyncEngine
) -> None:
    body = large_notification(150_000)
    path = f"/hooks/statuspage/{WEBHOOK_SECRET}"
    status, _ = await post_in_two_writes(hook_server, path, body, chunked=True)
    assert status == 200
    assert await stored_event_kinds(engine) == [EventKind.INCIDENT_OPENED]


@pytest.fixture
async def slack_server(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Server]:
    async with FakeSlack() as slack:
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            catalog_path=write_catalog(
                tmp_path / "catalog.toml", {"openai": "http://127.0.0.1:9/api/v2/summary.json"}
            ),
            slack_bot_token="xoxb-test-token",
            slack_signing_secret=SLACK_SECRET,
            slack_api_url=slack.api_url,
        )
        async with open_app(settings, clock=clock) as app:
            started = asyncio.Event()
            web_app = web.Application(middlewares=[signalling(started)])
            adapter = create_slack_adapter(settings, app.deps, clock, web_app=web_app)
            server = WebServer(web_app, host="127.0.0.1", port=0)
            await server.start()
            assert server.bound_port is not None
            await adapter.start()
            try:
                yield Server(server.bound_port, started)
            finally:
                await adapter.stop()
                await server.stop()


def signed_headers(body: bytes, clock: FakeClock) -> str:
    ts = str(int(clock.now.timestamp()))
    return (
        "Content-Type: application/json\r\n"
        f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: {signature(body, ts)}\r\n"
    )


async def test_a_signed_slack_request_in_two_segments_is_accepted(
    slack_server: Server, clock: FakeClock
) -> None:
    body = json.dumps({"token": "x", "challenge": "c" * 2000, "type": "url_verification"}).encode()
    headers = signed_headers(body, clock)
    status, answer = await post_in_two_writes(slack_server, "/slack/events", body, headers=headers)
    assert status == 200
    assert "c" * 2000 in answer.decode()


async def test_a_slack_request_over_the_cap_is_refused_with_413(
    slack_server: Server, clock: FakeClock
) -> None:
    body = b"{" + b" " * MAX_BODY_BYTES + b"}"
    headers = signed_headers(body, clock)
    status, _ = await post_in_two_writes(
        slack_server, "/slack/events", body, headers=headers, chunked=True
    )
    assert status == 413
