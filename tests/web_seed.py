"""A running web app over seeded data, for the dashboard, API and browser tests.

The data goes in the way production puts it there: a fake status page on loopback read by the
real poller, and reports, workarounds and history through the real store functions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.commands import CommandRegistry
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog, parse_catalog
from bot.store import community_store, crowd_store, detection_store, source_store
from bot.store.community_models import WorkaroundRow, WorkaroundVoteRow
from bot.store.crowd_models import EarlyWarningRow
from bot.store.engine import session_factory
from bot.web.server import WebServer, create_web_app
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import incident, make_poller, snapshot

GITHUB = "/work/shared/fixtures/real/statuspage_summary_github_2022-11-25_incident.json"
NOW = datetime(2022, 11, 25, 16, 0, tzinfo=UTC)
EVIL_TITLE = "<script>alert('pwned')</script> Packages & Pages"
EVIL_UPDATE = '<img src=x onerror="alert(1)"> still investigating'
EVIL_WORKAROUND = "<b>Use</b> the <script>mirror</script>"


@dataclass
class Seeded:
    """A served web app and what was put in it."""

    base: str
    server: WebServer
    deps: AppDeps
    clock: FakeClock
    http: aiohttp.ClientSession


def github_payload() -> dict[str, object]:
    """GitHub's real summary of 2022-11-25 with hostile text in the incident."""
    with open(GITHUB, encoding="utf-8") as handle:
        data: dict[str, object] = json.load(handle)
    data = copy.deepcopy(data)
    incidents = data["incidents"]
    assert isinstance(incidents, list)
    incidents[0]["name"] = EVIL_TITLE
    incidents[0]["incident_updates"][0]["body"] = EVIL_UPDATE
    return data


def calm_payload() -> dict[str, object]:
    """A calm page: every component operational, no incident."""
    data = github_payload()
    data["incidents"] = []
    data["status"] = {"indicator": "none", "description": "All Systems Operational"}
    for component in data["components"]:  # type: ignore[attr-defined]
        component["status"] = "operational"
    return data


def seed_catalog(pages: FakeStatusServer) -> Catalog:
    """Two code hosts on one shared page (the fake GitHub) and a calm alternative."""
    return parse_catalog(
        {
            "service": [
                {
                    "id": "github",
                    "name": "GitHub",
                    "provider": "GitHub",
                    "capabilities": ["code-hosting", "packages"],
                    "status_page": pages.url(""),
                    "source": [{"kind": "statuspage", "url": pages.url(SUMMARY_PATH)}],
                },
                {
                    "id": "gitcalm",
                    "name": "Calm Git",
                    "provider": "Calm",
                    "capabilities": ["code-hosting"],
                    "status_page": pages.url("/calm"),
                    "source": [{"kind": "statuspage", "url": pages.url("/calm" + SUMMARY_PATH)}],
                },
            ]
        }
    )


async def _seed_store(engine: AsyncEngine, clock: FakeClock, catalog: Catalog) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        # Reports: a busy last hour for GitHub against a quiet week.
        for n in range(14):
            await crowd_store.add_report(
                session=session,
                service_id="github",
                reporter_hash=f"old-{n}",
                platform="discord",
                community_id="g1",
                what="down",
                component=None,
                details=None,
                now=clock.now - timedelta(days=2, hours=n),
                window=timedelta(minutes=30),
            )
        for n in [0, *range(5)]:  # "now-0" twice: the repeat is stored but not counted
            await crowd_store.add_report(
                session=session,
                service_id="github",
                reporter_hash=f"now-{n}",
                platform="slack",
                community_id="T1",
                what="down",
                component=None,
                details=None,
                now=clock.now - timedelta(minutes=5 * n + 1),
                window=timedelta(minutes=30),
            )
        good = await community_store.add_workaround(
            session=session,
            row=WorkaroundRow(
                service_id="github",
                title=EVIL_WORKAROUND,
                steps="Point npm at the mirror: npm config set registry https://mirror.example",
                link="javascript:alert(1)",
                author_hash="a1",
                origin_platform="discord",
                origin_community_id="g1",
                created_at=clock.now - timedelta(hours=1),
            ),
        )
        await session.flush()
        session.add(
            WorkaroundVoteRow(
                workaround_id=good.id or 0,
                voter_hash="v1",
                worked=True,
                at=clock.now - timedelta(minutes=30),
            )
        )
        session.add(
            EarlyWarningRow(
                service_id="gitcalm",
                level="reported",
                first_report_at=clock.now - timedelta(minutes=20),
                opened_at=clock.now - timedelta(minutes=10),
            )
        )
        # History: a resolved major incident ten days ago on GitHub's page.
        github = catalog.get("github")
        assert github is not None
        source = await source_store.get_source(session=session, url=github.sources[0].url)
        assert source is not None
        assert source.id is not None
        past = incident(
            "past-1",
            started=clock.now - timedelta(days=10),
            updates=(("resolved", "Fixed.", clock.now - timedelta(days=10) + timedelta(hours=2)),),
            resolved=clock.now - timedelta(days=10) + timedelta(hours=2),
        )
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(incidents=(past,)),
            etag=None,
            last_modified=None,
            now=clock.now - timedelta(days=10),
        )
        await detection_store.link_incidents(
            session=session, service_id="github", source_id=source.id, external_ids=["past-1"]
        )
        await session.commit()


@asynccontextmanager
async def seeded_web(
    engine: AsyncEngine, *, rate_limit_per_minute: int = 0, trusted_proxies: str | None = None
) -> AsyncIterator[Seeded]:
    """Serve the dashboard on 127.0.0.1 port 0 over seeded data."""
    clock = FakeClock(NOW - timedelta(days=10, hours=1))
    async with FakeStatusServer() as pages, aiohttp.ClientSession() as http:
        pages.set_json(SUMMARY_PATH, calm_payload())
        pages.set_json("/calm" + SUMMARY_PATH, calm_payload())
        catalog = seed_catalog(pages)
        poller = await make_poller(engine, clock, catalog, http)
        await poller.poll_all()  # the history incident is recorded against a known source
        clock.now = NOW
        await _seed_store(engine, clock, catalog)
        pages.set_json(SUMMARY_PATH, github_payload())
        await poller.poll_all()
        deps = AppDeps(
            catalog=catalog, sessions=session_factory(engine), registry=CommandRegistry()
        )
        app = create_web_app(
            clock=clock,
            deps=deps,
            rate_limit_per_minute=rate_limit_per_minute,
            trusted_proxies=trusted_proxies,
        )
        server = WebServer(app, host="127.0.0.1", port=0)
        await server.start()
        try:
            yield Seeded(
                base=f"http://127.0.0.1:{server.bound_port}",
                server=server,
                deps=deps,
                clock=clock,
                http=http,
            )
        finally:
            await server.stop()


async def add_a_plain_and_a_disguised_link(seeded: Seeded) -> None:
    """Two workarounds for GitHub: "Use the mirror" links mirror.example; "Official fix" links a
    URL that shows githubstatus.com but opens evil.example."""
    async with seeded.deps.sessions() as session:
        for title, url in (
            ("Use the mirror", "https://mirror.example/npm"),
            ("Official fix", "https://www.githubstatus.com@evil.example/"),
        ):
            await community_store.add_workaround(
                session=session,
                row=WorkaroundRow(
                    service_id="github",
                    title=title,
                    steps=title,
                    link=url,
                    author_hash="a2",
                    origin_platform="slack",
                    origin_community_id="T1",
                    created_at=seeded.clock.now,
                ),
            )
        await session.commit()
