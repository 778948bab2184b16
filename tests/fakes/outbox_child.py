"""One of several delivery worker processes sharing an outbox (scale-out tests and bench/scale.py).

Seeding: `seed` subscribes N channels of FakeChatPlatform to one service and stages one incident,
one post per channel, in a single transaction, as the poller would; `stage_update` stages one
update of it (an edit and a thread reply per channel).

Usage: python -m tests.fakes.outbox_child DATABASE_URL PLATFORM_URL [--stats] [--profile PATH]
Drains with the app's OutboxWorker (sharing the outbox through OutboxLink on PostgreSQL) until
nothing is pending or being sent anywhere, then prints how many deliveries it handled; with
``--stats`` a JSON line instead, adding the CPU time of the drain and of rendering the replies
into text (bench/scale.py), and with
``--profile`` cProfile's stats of the drain written to PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import time
from datetime import UTC, datetime

import aiohttp
from sqlalchemy import func
from sqlmodel import col, select

from bot.core.commands import Reply
from bot.core.events import DetectionEvent, EventKind
from bot.core.timeutil import system_clock
from bot.delivery.claim import OutboxLink
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.runtime.heap import settle_startup_heap
from bot.sources.catalog import Catalog, parse_catalog
from bot.store import alert_store, catalog_store, migrate
from bot.store.engine import create_engine, is_sqlite, session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.pg_connection import asyncpg_connector
from tests.fakes.http_sender import PLATFORM, HttpChatSender

CATALOG: Catalog = parse_catalog(
    {
        "service": [
            {"id": "svc", "name": "Service", "source": [{"kind": "feed", "url": "https://x/f"}]}
        ]
    }
)


def opened(now: datetime, key: str = "opened") -> DetectionEvent:
    """A new major incident on `svc`."""
    detail = {"status": "investigating", "impact": "major", "started_at": now.isoformat()}
    detail |= {"update_status": "investigating", "update_body": "Looking into it"}
    detail |= {"update_at": now.isoformat()}
    return DetectionEvent(
        EventKind.INCIDENT_OPENED, "svc", now, key, f"inc-{key}", "Outage", detail
    )


def updated(now: datetime, key: str = "updated") -> DetectionEvent:
    """A later update of the incident `opened` started (an edit and a thread reply each)."""
    event = opened(now, "opened")
    detail = dict(event.detail) | {"status": "identified", "update_status": "identified"}
    detail |= {"update_body": "Found it", "update_at": now.isoformat()}
    return DetectionEvent(
        EventKind.INCIDENT_UPDATED, "svc", now, key, event.incident_id, "Outage", detail
    )


async def stage_update(database_url: str, *, now: datetime | None = None) -> int:
    """Stage one update of the incident `seed` opened; returns deliveries staged."""
    now = now or datetime.now(UTC)
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            staged = await alert_store.record_alert_events(
                session=session, events=[updated(now)], now=now
            )
            await session.commit()
        return staged
    finally:
        await engine.dispose()


async def seed(database_url: str, channels: int, *, now: datetime | None = None) -> int:
    """Migrate, subscribe `channels` channels, stage one incident; returns deliveries staged."""
    now = now or datetime.now(UTC)
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=CATALOG)
            session.add_all(
                SubscriptionRow(
                    platform=PLATFORM,
                    community_id=f"guild-{index % 50}",
                    channel_id=f"c{index}",
                    service_id="svc",
                    created_at=now,
                )
                for index in range(channels)
            )
            await session.commit()
        async with sessions() as session:
            staged = await alert_store.record_alert_events(
                session=session, events=[opened(now)], now=now
            )
            await session.commit()
        return staged
    finally:
        await engine.dispose()


class TimedRenderSender(HttpChatSender):
    """HttpChatSender that adds up the CPU time of turning replies into platform text: the
    adapter's share of a delivery, told apart from the worker's in bench/scale.py."""

    render_cpu = 0.0

    def _text(self, reply: Reply) -> str:
        started = time.process_time()
        try:
            return super()._text(reply)
        finally:
            TimedRenderSender.render_cpu += time.process_time() - started


async def drain(database_url: str, platform_url: str) -> int:
    """Send until the outbox is empty everywhere; returns how many deliveries this one did."""
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    shared = not is_sqlite(database_url)
    link = OutboxLink(asyncpg_connector(database_url)) if shared else None
    handled = 0
    try:
        async with aiohttp.ClientSession() as http:
            worker = OutboxWorker(
                sessions=sessions,
                senders={PLATFORM: TimedRenderSender(http, platform_url)},
                catalog=CATALOG,
                clock=system_clock,
                config=WorkerConfig(channel_concurrency=16, base_backoff=0.01),
                link=link,
            )
            await worker.recover()
            while True:
                done = await worker.run_once()
                handled += done
                if done:
                    continue
                async with sessions() as session:
                    open_rows = col(DeliveryRow.status).in_(("pending", "sending"))
                    query = select(func.count()).select_from(DeliveryRow).where(open_rows)
                    if not (await session.exec(query)).one():
                        return handled
                await asyncio.sleep(0.01)  # others still sending, or a retry not yet due
    finally:
        if link is not None:
            await link.close()
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("platform_url")
    parser.add_argument("--stats", action="store_true", help="print JSON: handled, CPU seconds")
    parser.add_argument("--profile", help="write cProfile stats of the drain to this path")
    args = parser.parse_args()
    profiler = cProfile.Profile(time.process_time) if args.profile else None
    settle_startup_heap()  # as the app does once it has started, before its work begins
    started = time.process_time()
    if profiler is not None:
        profiler.enable()
    handled = asyncio.run(drain(args.database_url, args.platform_url))
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    cpu = time.process_time() - started
    stats = {"handled": handled, "cpu_s": cpu, "render_cpu_s": TimedRenderSender.render_cpu}
    print(json.dumps(stats) if args.stats else handled, flush=True)


if __name__ == "__main__":
    main()
