"""The Statuspage webhook receiver: a real HTTP POST into the bot's web server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.events import EventKind
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import detection_store, repository
from bot.store.engine import session_factory
from bot.store.models import ComponentRow, IncidentRow
from bot.web.server import WebServer, create_web_app
from bot.web.webhooks import StatuspageWebhook, parse_webhook_secrets
from tests.conftest import FakeClock
from tests.helpers import catalog_for

URL = "https://status.example.com/api/v2/summary.json"
SECRET = "s3cret-0123456789abcdef"

INCIDENT_NOTIFICATION = {
    "meta": {
        "unsubscribe": "https://status.example.com/?unsubscribe=x",
        "documentation": "https://doers.statuspage.io",
    },
    "page": {
        "id": "abc",
        "status_indicator": "major",
        "status_description": "Partial System Outage",
    },
    "incident": {
        "id": "inc-42",
        "name": "Elevated API errors",
        "status": "investigating",
        "impact": "major",
        "created_at": "2026-11-27T11:58:00Z",
        "shortlink": "https://stspg.io/x",
        "incident_updates": [
            {
                "id": "u1",
                "status": "investigating",
                "body": "We are looking into it.",
                "created_at": "2026-11-27T11:58:00Z",
            }
        ],
    },
}
COMPONENT_NOTIFICATION = {
    "meta": {},
    "page": {"id": "abc"},
    "component_update": {
        "created_at": "2026-11-27T12:00:00Z",
        "new_status": "major_outage",
        "old_status": "operational",
    },
    "component": {
        "id": "c-api",
        "name": "API",
        "status": "major_outage",
        "created_at": "2020-01-01T00:00:00Z",
    },
}


@pytest.fixture
async def hook(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[tuple[str, AsyncEngine]]:
    catalog = catalog_for({"svc": URL})
    sessions = session_factory(engine)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
    async with new_http_session(user_agent="tests") as http:
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=HttpFetcher(http),
            prober=HttpProber(http),
            clock=clock,
        )
        webhook = StatuspageWebhook(sources_by_secret={SECRET: URL}, ingest=poller.ingest_push)
        server = WebServer(create_web_app(clock=clock, webhook=webhook), host="127.0.0.1", port=0)
        await server.start()
        try:
            yield f"http://127.0.0.1:{server.bound_port}/hooks/statuspage/", engine
        finally:
            await server.stop()


async def post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    payload = io.BytesIO(body)  # aiohttp warns about large raw-bytes bodies
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=payload, headers={"Content-Type": "application/json"}) as r,
    ):
        return r.status, await r.json()


async def events(engine: AsyncEngine) -> list[EventKind]:
    async with session_factory(engine)() as session:
        return [e.kind for e in await detection_store.events_for(session=session, service_id="svc")]


async def test_incident_notification_is_detected_at_once(hook: tuple[str, AsyncEngine]) -> None:
    base, engine = hook
    status, answer = await post(base + SECRET, json.dumps(INCIDENT_NOTIFICATION).encode())
    assert (status, answer) == (200, {"ok": True})
    assert await events(engine) == [EventKind.INCIDENT_OPENED]
    status, _ = await post(base + SECRET, json.dumps(INCIDENT_NOTIFICATION).encode())  # a retry
    assert status == 200
    assert await events(engine) == [EventKind.INCIDENT_OPENED]  # once
    async with session_factory(engine)() as session:
        stored = (await session.exec(select(IncidentRow))).all()
    assert [(i.external_id, i.status, i.resolved_at) for i in stored] == [
        ("inc-42", "investigating", None)
    ]


async def test_component_notification_updates_the_component(hook: tuple[str, AsyncEngine]) -> None:
    base, engine = hook
    assert (await post(base + SECRET, json.dumps(COMPONENT_NOTIFICATION).encode()))[0] == 200
    async with session_factory(engine)() as session:
        source = await repository.get_source(session=session, url=URL)
        assert source is not None
        rows = (await session.exec(select(ComponentRow))).all()
    assert [(r.name, r.status) for r in rows] == [("API", "major_outage")]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("wrong-secret-0123456789", json.dumps(INCIDENT_NOTIFICATION).encode(), 404),
        (SECRET, b"{not json", 400),
        (SECRET, b"[1, 2]", 400),
        (SECRET, json.dumps({"meta": {}, "page": {}}).encode(), 400),
        (SECRET, json.dumps({"incident": {"status": "investigating"}}).encode(), 400),
        (SECRET, b"x" * 1_100_000, 413),
    ],
)
async def test_bad_requests_store_nothing(
    hook: tuple[str, AsyncEngine], path: str, body: bytes, status: int
) -> None:
    base, engine = hook
    got, answer = await post(base + path, body)
    assert got == status
    assert "error" in answer
    assert await events(engine) == []


def test_secret_pairs_are_validated_without_echoing_secrets() -> None:
    assert parse_webhook_secrets("openai-api:abcdefghijklmnop, github:0123456789abcdef0") == {
        "openai-api": "abcdefghijklmnop",
        "github": "0123456789abcdef0",
    }
    with pytest.raises(ValueError, match="entry 2") as error:
        parse_webhook_secrets("openai-api:abcdefghijklmnop,github:short")
    assert "short" not in str(error.value)
