"""Builders shared by tests: small catalogs, snapshots, and `outagebot run` as a process."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

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
from bot.sources.catalog import Catalog, parse_catalog
from bot.sources.fetch import HttpFetcher
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import Timeline, parse_timeline
from bot.store import alert_store, repository, subscription_store
from bot.store.engine import session_factory
from bot.store.subscription_store import Scope
from tests.conftest import FakeClock

TIMELINES = Path(__file__).resolve().parent / "fixtures" / "timelines"
ANTHROPIC_TIMELINE = "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
OPENAI_TIMELINE = "openai_2024-09-16_bq8064vtt623_api_logins_failing.txt"


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
) -> StatusPoller:
    """A real poller over ``catalog`` (synced into the database) with the real HTTP client."""
    sessions = session_factory(engine)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
    return StatusPoller(
        catalog=catalog,
        sessions=sessions,
        fetcher=HttpFetcher(http, timeout=timeout),
        prober=HttpProber(http),
        clock=clock,
    )


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
        await repository.sync_catalog(session=session, catalog=SVC_CATALOG)
        for scope, channel_id in places:
            await subscription_store.upsert_subscription(
                session=session,
                scope=scope,
                channel_id=channel_id,
                service_id="svc",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=False,
                maintenance=True,
                now=clock.now,
            )
        await session.commit()


async def record_event(engine: AsyncEngine, clock: FakeClock, event: DetectionEvent) -> None:
    """Stage an event's alert and deliveries, as the poller does."""
    async with session_factory(engine)() as session:
        await alert_store.record_alert_events(session=session, events=[event], now=clock.now)
        await session.commit()
