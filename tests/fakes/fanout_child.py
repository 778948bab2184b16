"""A delivery worker process for crash tests: drains the outbox into FakeChatPlatform, then exits.

Usage: python -m tests.fakes.fanout_child DATABASE_URL PLATFORM_URL
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from sqlalchemy import func
from sqlmodel import select

from bot.core.timeutil import system_clock
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.sources.catalog import parse_catalog
from bot.store.engine import create_engine, session_factory
from bot.store.models import DeliveryRow
from tests.fakes.http_sender import HttpChatSender


async def drain(database_url: str, platform_url: str) -> None:
    engine = create_engine(database_url)
    catalog = parse_catalog(
        {
            "service": [
                {"id": "svc", "name": "Service", "source": [{"kind": "feed", "url": "https://x/f"}]}
            ]
        }
    )
    try:
        async with aiohttp.ClientSession() as http:
            worker = OutboxWorker(
                sessions=session_factory(engine),
                senders={"fakechat": HttpChatSender(http, platform_url)},
                catalog=catalog,
                clock=system_clock,
                config=WorkerConfig(channel_concurrency=8, base_backoff=0.01),
            )
            await worker.recover()
            sessions = session_factory(engine)
            while True:
                if not await worker.run_once():
                    async with sessions() as session:
                        pending = (
                            await session.exec(
                                select(func.count())
                                .select_from(DeliveryRow)
                                .where(DeliveryRow.status == "pending")
                            )
                        ).one()
                    if not pending:
                        return
                    await asyncio.sleep(0.01)  # a retry is not due yet
    finally:
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(drain(sys.argv[1], sys.argv[2]))
