"""Builders shared by tests: small catalogs, snapshots, and `outagebot run` as a process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.typedefs import Middleware
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.events import DetectionEvent, EventKind
from bot.core.status import (
    Component,
    ComponentStatus,
    Incident,
    IncidentUpdate,
    Indicator,
    PageInfo,
    Snapshot,
)
from bot.core.timeutil import Clock
from bot.delivery.alert_views import AlertView
from bot.services.crowd_watch import CrowdWatch
from bot.sources.catalog import Catalog, parse_catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import EventRecorder, StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import Timeline, parse_timeline
from bot.store import alert_store, catalog_store, detection_store, subscription_store
from bot.store.engine import session_factory
from bot.store.models import IncidentRow, ServiceIncidentRow
from bot.store.subscription_store import Scope
from bot.web.server import WebServer, create_web_app
from bot.web.webhooks import StatuspageWebhook
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer

TIMELINES = Path(__file__).resolve().parent / "fixtures" / "timelines"
ANTHROPIC_TIMELINE = "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
OPENAI_TIMELINE = "openai_2024-09-16_bq8064vtt623_api_logins_failing.txt"
ITERABLE_SUMMARY = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_iterable_2017-08-22.json").read_text()
)
"""Iterable's real summary.json of 2017-08-22, every component operational."""


def real_timeline(file_name: str) -> Timeline:
    """A real incident, as its status page told it (tests/fixtures/timelines/)."""
    return parse_timeline((TIMELINES / file_name).read_text(encoding="utf-8"))


def catalog_for(urls: dict[str, str]) -> Catalog:
    """A catalog whose services (id → summary URL) each have one statuspage source."""
    return parse_catalog(
        {
            "service": [
                {
                    "id": service_id,
                    "name": service_id.replace("-", " ").title(),
                    "provider": service_id,
                    "aliases": [f"{service_id}-alias"],
                    "status_page": url.removesuffix("/api/v2/summary.json"),
                    "source": [{"kind": "statuspage", "url": url}],
                }
                for service_id, url in urls.items()
            ]
        }
    )


def write_catalog(
    path: Path, urls: dict[str, str], *, components: dict[str, list[str]] | None = None
) -> Path:
    """Write a catalog TOML file (for subprocess tests) and return its path."""
    blocks = []
    for service_id, url in urls.items():
        wanted = (components or {}).get(service_id, [])
        blocks.append(
            "\n".join(
                [
                    "[[service]]",
                    f'id = "{service_id}"',
                    f'name = "{service_id.title()}"',
                    f'provider = "{service_id.title()}"',
                    f'aliases = ["{service_id}-alias"]',
                    f'status_page = "{url.removesuffix("/api/v2/summary.json")}"',
                    f"components = {wanted!r}".replace("'", '"'),
                    "[[service.source]]",
                    'kind = "statuspage"',
                    f'url = "{url}"',
                ]
            )
        )
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def snapshot(
    *,
    indicator: Indicator = Indicator.NONE,
    components: tuple[tuple[str, ComponentStatus], ...] = (("API", ComponentStatus.OPERATIONAL),),
    incidents: tuple[Incident, ...] = (),
) -> Snapshot:
    """A small statuspage snapshot."""
    return Snapshot(
        kind="statuspage",
        page=PageInfo(name="Example", url="https://status.example.com"),
        indicator=indicator,
        components=tuple(
            Component(id=f"c-{name.lower()}", name=name, status=status)
            for name, status in components
        ),
        incidents=incidents,
        lists_all_open_incidents=True,  # like summary.json
    )


def incident(
    incident_id: str,
    *,
    started: datetime,
    updates: tuple[tuple[str, str, datetime], ...],
    impact: str = "major",
    resolved: datetime | None = None,
) -> Incident:
    """An incident whose updates are (status, body, created_at), newest first."""
    return Incident(
        id=incident_id,
        name=f"Incident {incident_id}",
        status=updates[0][0] if updates else "investigating",
        impact=impact,
        started_at=started,
        resolved_at=resolved,
        url=f"https://status.example.com/incidents/{incident_id}",
        updates=tuple(IncidentUpdate(status=s, body=b, created_at=t) for s, b, t in updates),
    )


async def make_poller(
    engine: AsyncEngine,
    clock: Clock,
    catalog: Catalog,
    http: aiohttp.ClientSession,
    *,
    timeout: float = 1,
    record_events: EventRecorder | None = None,
    sessions: Callable[[], Any] | None = None,
) -> StatusPoller:
    """A real poller over ``catalog`` (synced into the database) with the real HTTP client;
    ``sessions``: a stand-in for the database's sessions (one that fails or stalls on cue)."""
    sessions = sessions or session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
    return StatusPoller(
        catalog=catalog,
        sessions=sessions,
        fetcher=HttpFetcher(http, timeout=timeout),
        prober=HttpProber(http),
        clock=clock,
        record_events=record_events,
    )


def retry_at(poller: StatusPoller, url: str) -> datetime | None:
    """When a failing source will next be asked (polls before then are skipped); None if due."""
    return poller._not_before.get(url)


WEBHOOK_SOURCE_URL = "https://status.example.com/api/v2/summary.json"
"""The statuspage source of service "svc" that `statuspage_webhook_server`'s webhook feeds."""
WEBHOOK_SECRET = "s3cret-0123456789abcdef"

# A Statuspage incident notification, as documented ("incident" subscription).
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


@asynccontextmanager
async def webhook_server(
    clock: Clock,
    poller: StatusPoller,
    source_url: str,
    *,
    middlewares: Sequence[Middleware] = (),
) -> AsyncIterator[WebServer]:
    """The bot's web server on a free port whose Statuspage webhook (secret `WEBHOOK_SECRET`)
    feeds ``poller`` pushes of ``source_url``; ``middlewares`` run before every handler."""
    webhook = StatuspageWebhook(
        sources_by_secret={WEBHOOK_SECRET: source_url}, ingest=poller.ingest_push
    )
    app = create_web_app(clock=clock, webhook=webhook)
    app.middlewares.extend(middlewares)
    server = WebServer(app, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def statuspage_webhook_server(
    engine: AsyncEngine, clock: Clock, *, middlewares: Sequence[Middleware] = ()
) -> AsyncIterator[WebServer]:
    """`webhook_server` feeding a real poller of service "svc" (source `WEBHOOK_SOURCE_URL`)."""
    async with new_http_session(user_agent="tests") as http:
        catalog = catalog_for({"svc": WEBHOOK_SOURCE_URL})
        poller = await make_poller(engine, clock, catalog, http, timeout=10)
        async with webhook_server(
            clock, poller, WEBHOOK_SOURCE_URL, middlewares=middlewares
        ) as server:
            yield server


async def stored_event_kinds(engine: AsyncEngine, service_id: str = "svc") -> list[EventKind]:
    """The kinds of the detection events stored for ``service_id``, oldest first."""
    async with session_factory(engine)() as session:
        stored = await detection_store.events_for(session=session, service_id=service_id)
    return [e.kind for e in stored]


async def post_json(url: str, body: object, *, token: str) -> tuple[int, Any]:
    """POST ``body`` as JSON with a bearer token: (status, the decoded JSON answer)."""
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json()


def bot_env(tmp_path: Path, catalog: Path, **extra: str) -> dict[str, str]:
    """The environment of a bot process: its own SQLite file and catalog, no chat tokens."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "DISCORD_", "SLACK_"))
    }
    env.update(
        {
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            "CATALOG_PATH": str(catalog),
            "WEB_PORT": "0",
            "HTTP_TIMEOUT_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


async def start_bot_run(
    tmp_path: Path, env: dict[str, str], *, stdin: int = asyncio.subprocess.DEVNULL
) -> asyncio.subprocess.Process:
    """`python -m bot run` in ``tmp_path`` with output and log piped."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdin=stdin,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def read_until(stream: asyncio.StreamReader, pattern: str, seen: list[str]) -> re.Match[str]:
    """Read lines (kept in ``seen``) until one matches; fails if the stream ends first."""
    while True:
        line = (await stream.readline()).decode()
        if not line:
            raise AssertionError("process ended before logging " + pattern + "\n" + "".join(seen))
        seen.append(line)
        if match := re.search(pattern, line):
            return match


def serve_iterable(server: FakeStatusServer, tmp_path: Path) -> Path:
    """``server`` serves `ITERABLE_SUMMARY`; the path of a catalog of that one service."""
    server.set_json(SUMMARY_PATH, ITERABLE_SUMMARY)
    return write_catalog(tmp_path / "catalog.toml", {"iterable": server.url(SUMMARY_PATH)})


@dataclass
class BotProcess:
    """A running `outagebot run` (see `running_bot_process`)."""

    process: asyncio.subprocess.Process
    stderr: asyncio.StreamReader
    base_url: str
    """Its web server, http://127.0.0.1:port."""
    seen: list[str]
    """The log lines read so far."""
    rest: str = ""
    """What it logged after the test stopped reading: set when the process is gone."""

    async def read_until(self, pattern: str) -> re.Match[str]:
        """Read its log until a line matches (at most 30 s)."""
        return await asyncio.wait_for(read_until(self.stderr, pattern, self.seen), 30)

    async def stop(self) -> int | None:
        """SIGTERM, then its exit code (at most 30 s)."""
        self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)

    @property
    def log(self) -> str:
        """Everything it logged (complete once the context has exited)."""
        return "".join(self.seen) + self.rest


@asynccontextmanager
async def running_bot_process(tmp_path: Path, env: dict[str, str]) -> AsyncIterator[BotProcess]:
    """`outagebot run` once its web server listens; killed at the end if the test did not
    stop it, then the rest of its log read."""
    process = await start_bot_run(tmp_path, env)
    assert process.stderr is not None
    seen: list[str] = []
    try:
        found = await asyncio.wait_for(
            read_until(process.stderr, r"web server on http://[\d.]+:(\d+)", seen), 30
        )
        bot = BotProcess(process, process.stderr, f"http://127.0.0.1:{found.group(1)}", seen)
        yield bot
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    bot.rest = (await process.stderr.read()).decode()


# One service "svc" whose feed is never read: for tests that stage alerts by hand.
SVC_CATALOG = parse_catalog(
    {
        "service": [
            {"id": "svc", "name": "Service", "source": [{"kind": "feed", "url": "https://x/f"}]}
        ]
    }
)


def outage_event(
    kind: EventKind, key: str, status: str, body: str, clock: FakeClock
) -> DetectionEvent:
    """An event of incident "inc" of service "svc", at the clock's time."""
    detail = {
        "status": status,
        "impact": "major",
        "update_status": status,
        "update_body": body,
        "update_at": clock.now.isoformat(),
        "started_at": clock.now.isoformat(),
    }
    return DetectionEvent(
        kind=kind,
        service_id="svc",
        at=clock.now,
        key=key,
        incident_id="inc",
        title="Outage",
        detail=detail,
    )


async def subscribe_channels(
    engine: AsyncEngine, clock: FakeClock, places: Sequence[tuple[Scope, str]]
) -> None:
    """Subscribe each (community, channel) to "svc"."""
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=SVC_CATALOG)
        for scope, channel_id in places:
            await subscribe(session, scope, channel_id, "svc", clock.now)
        await session.commit()


async def subscribe(
    session: AsyncSession,
    scope: Scope,
    channel_id: str,
    service_id: str,
    now: datetime,
    *,
    components: tuple[str, ...] = (),
) -> None:
    """Subscribe a channel to a service as `/subscribe <service>` does with its defaults."""
    await subscription_store.upsert_subscription(
        session=session,
        scope=scope,
        channel_id=channel_id,
        service_id=service_id,
        components=components,
        min_severity="minor",
        mention_role=None,
        early_warnings=False,
        maintenance=True,
        now=now,
    )


def incident_view(service_id: str, title: str, at: datetime, **changes: Any) -> AlertView:
    """An open major incident's alert view as delivery renders it (`changes` override fields)."""
    view = AlertView(
        service_id=service_id,
        service_name=service_id.title(),
        kind="incident",
        title=title,
        status="investigating",
        impact="major",
        url=None,
        components=(),
        latest_update="",
        latest_update_at=None,
        started_at=at,
        resolved_at=None,
    )
    return replace(view, **changes)


async def record_event(engine: AsyncEngine, clock: FakeClock, event: DetectionEvent) -> None:
    """Stage an event's alert and deliveries, as the poller does."""
    async with session_factory(engine)() as session:
        await alert_store.record_alert_events(session=session, events=[event], now=clock.now)
        await session.commit()


async def settle(watch: CrowdWatch) -> None:
    """Wait for the crowd evaluations that /report nudges started (and those they start)."""
    while watch._tasks:
        await asyncio.gather(*list(watch._tasks))


async def link_incidents(
    session: AsyncSession,
    source_id: int,
    incidents: Sequence[tuple[str, datetime, datetime | None]],
) -> None:
    """Store major incidents (service, started, resolved) of one source, linked to their service
    the way the poller links them (``inc-<n>`` ids, named "Incident <n>")."""
    for n, (service_id, started, resolved) in enumerate(incidents):
        row = IncidentRow(
            source_id=source_id,
            external_id=f"inc-{n}",
            name=f"Incident {n}",
            status="resolved" if resolved else "investigating",
            impact="major",
            started_at=started,
            resolved_at=resolved,
            first_seen_at=started,
        )
        session.add(row)
        await session.flush()
        session.add(ServiceIncidentRow(service_id=service_id, incident_id=row.id or 0))
