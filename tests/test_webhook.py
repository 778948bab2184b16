"""The Statuspage webhook receiver: a real HTTP POST into the bot's web server."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.events import EventKind
from bot.settings import parse_webhook_secrets
from bot.sources.catalog import parse_catalog
from bot.sources.fetch import new_http_session
from bot.store import source_store
from bot.store.engine import session_factory
from bot.store.models import ComponentRow, IncidentRow, ServiceIncidentRow
from bot.store.overview_store import open_incidents
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import (
    INCIDENT_NOTIFICATION,
    WEBHOOK_SECRET,
    WEBHOOK_SOURCE_URL,
    make_poller,
    statuspage_webhook_server,
    stored_event_kinds,
    webhook_server,
)

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
    async with statuspage_webhook_server(engine, clock) as server:
        yield f"http://127.0.0.1:{server.bound_port}/hooks/statuspage/", engine


async def post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    payload = io.BytesIO(body)  # aiohttp warns about large raw-bytes bodies
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, data=payload, headers={"Content-Type": "application/json"}) as r,
    ):
        return r.status, await r.json()


async def test_incident_notification_is_detected_at_once(hook: tuple[str, AsyncEngine]) -> None:
    base, engine = hook
    status, answer = await post(base + WEBHOOK_SECRET, json.dumps(INCIDENT_NOTIFICATION).encode())
    assert (status, answer) == (200, {"ok": True})
    assert await stored_event_kinds(engine) == [EventKind.INCIDENT_OPENED]
    status, _ = await post(
        base + WEBHOOK_SECRET, json.dumps(INCIDENT_NOTIFICATION).encode()
    )  # a retry
    assert status == 200
    assert await stored_event_kinds(engine) == [EventKind.INCIDENT_OPENED]  # once
    async with session_factory(engine)() as session:
        stored = (await session.exec(select(IncidentRow))).all()
    assert [(i.external_id, i.status, i.resolved_at) for i in stored] == [
        ("inc-42", "investigating", None)
    ]


async def test_component_notification_updates_the_component(hook: tuple[str, AsyncEngine]) -> None:
    base, engine = hook
    assert (await post(base + WEBHOOK_SECRET, json.dumps(COMPONENT_NOTIFICATION).encode()))[
        0
    ] == 200
    async with session_factory(engine)() as session:
        source = await source_store.get_source(session=session, url=WEBHOOK_SOURCE_URL)
        assert source is not None
        rows = (await session.exec(select(ComponentRow))).all()
    assert [(r.name, r.status) for r in rows] == [("API", "major_outage")]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("wrong-secret-0123456789", json.dumps(INCIDENT_NOTIFICATION).encode(), 404),
        (WEBHOOK_SECRET, b"{not json", 400),
        (WEBHOOK_SECRET, b"[1, 2]", 400),
        (WEBHOOK_SECRET, json.dumps({"meta": {}, "page": {}}).encode(), 400),
        (WEBHOOK_SECRET, json.dumps({"incident": {"status": "investigating"}}).encode(), 400),
        (WEBHOOK_SECRET, b"x" * 1_100_000, 413),
    ],
)
async def test_bad_requests_store_nothing(
    hook: tuple[str, AsyncEngine], path: str, body: bytes, status: int
) -> None:
    base, engine = hook
    got, answer = await post(base + path, body)
    assert got == status
    assert "error" in answer
    assert await stored_event_kinds(engine) == []


def test_secret_pairs_are_validated_without_echoing_secrets() -> None:
    assert parse_webhook_secrets("openai-api:abcdefghijklmnop, github:0123456789abcdef0") == {
        "openai-api": "abcdefghijklmnop",
        "github": "0123456789abcdef0",
    }
    with pytest.raises(ValueError, match="entry 2") as error:
        parse_webhook_secrets("openai-api:abcdefghijklmnop,github:short")
    assert "short" not in str(error.value)


GITHUB_SUMMARY = (
    Path(__file__).parent / "fixtures/statuspage/statuspage_summary_github_2022-11-25_incident.json"
)
# GitHub's page, as a Statuspage incident webhook sends it: the incident names its components.
ACTIONS_NOTIFICATION = {
    "meta": {
        "unsubscribe": "https://www.githubstatus.com/?unsubscribe=x",
        "documentation": "https://doers.statuspage.io/customer-notifications/webhooks/",
    },
    "page": {
        "id": "kctbh9vrtdwd",
        "status_indicator": "minor",
        "status_description": "Minor Service Outage",
    },
    "incident": {
        "id": "act-2026",
        "name": "Incident with Actions",
        "status": "investigating",
        "impact": "major",
        "created_at": "2026-11-27T11:58:00.000Z",
        "updated_at": "2026-11-27T11:59:00.000Z",
        "started_at": "2026-11-27T11:58:00.000Z",
        "resolved_at": None,
        "monitoring_at": None,
        "shortlink": "https://stspg.io/act2026",
        "page_id": "kctbh9vrtdwd",
        "components": [
            {
                "id": "br0l2tvcx85d",
                "name": "Actions",
                "status": "degraded_performance",
                "created_at": "2017-01-31T20:01:46.621Z",
                "updated_at": "2026-11-27T11:59:00.000Z",
                "position": 7,
                "description": "Workflows, Compute and Orchestration for GitHub Actions",
                "group_id": None,
                "page_id": "kctbh9vrtdwd",
                "group": False,
                "only_show_if_degraded": False,
            }
        ],
        "incident_updates": [
            {
                "id": "upd-act-1",
                "status": "investigating",
                "body": "We are investigating reports of degraded performance for Actions.",
                "incident_id": "act-2026",
                "created_at": "2026-11-27T11:59:00.000Z",
                "display_at": "2026-11-27T11:59:00.000Z",
                "affected_components": [
                    {
                        "code": "br0l2tvcx85d",
                        "name": "Actions",
                        "old_status": "operational",
                        "new_status": "degraded_performance",
                    }
                ],
            }
        ],
    },
}


async def test_a_push_is_attributed_to_services_by_component_as_a_poll_is(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    # GitHub owns the whole page; Copilot only its "Copilot" component. An Actions incident
    # pushed by the page's webhook is GitHub's alone, exactly as when a poll finds it.
    page = json.loads(GITHUB_SUMMARY.read_text(encoding="utf-8"))
    page["incidents"] = []
    async with FakeStatusServer() as status, new_http_session(user_agent="tests") as http:
        url = status.url(SUMMARY_PATH)
        catalog = parse_catalog(
            {
                "service": [
                    {
                        "id": service_id,
                        "name": name,
                        "provider": "GitHub",
                        "status_page": "https://www.githubstatus.com",
                        "components": components,
                        "source": [{"kind": "statuspage", "url": url}],
                    }
                    for service_id, name, components in [
                        ("github", "GitHub", []),
                        ("github-copilot", "GitHub Copilot", ["Copilot"]),
                    ]
                ]
            }
        )
        poller = await make_poller(engine, clock, catalog, http)
        status.set_json(SUMMARY_PATH, page)
        await poller.poll_all()
        async with webhook_server(clock, poller, url) as server:
            hook = f"http://127.0.0.1:{server.bound_port}/hooks/statuspage/{WEBHOOK_SECRET}"
            assert (await post(hook, json.dumps(ACTIONS_NOTIFICATION).encode()))[0] == 200
    assert await stored_event_kinds(engine, "github-copilot") == []
    assert await stored_event_kinds(engine, "github") == [
        EventKind.INCIDENT_OPENED,
        EventKind.COMPONENT_CHANGED,
    ]
    async with session_factory(engine)() as session:
        links = (await session.exec(select(ServiceIncidentRow.service_id))).all()
        cards = await open_incidents(session=session)
    assert links == ["github"]
    assert sorted(cards) == ["github"]  # the dashboard shows it on GitHub's card only
