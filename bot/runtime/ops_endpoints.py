"""Operations endpoints: ``/readyz`` for orchestrators and ``/metrics`` for Prometheus.

``/healthz`` (in server.py) says the process runs; ``/readyz`` says it can do its job: the
database answers, the scheduler runs, and every configured chat adapter is connected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.adapters.base import Adapter
from bot.runtime.metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Ops:
    """What the operations endpoints look at."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    metrics: Metrics
    scheduler_running: Callable[[], bool] = lambda: False
    adapters: Sequence[Adapter] = ()
    db_timeout: float = 2.0


OPS = web.AppKey("ops", Ops)


def install(app: web.Application, ops: Ops, *, metrics: bool = True) -> None:
    """Add ``/readyz`` (and ``/metrics`` unless it is served on an address of its own)."""
    app[OPS] = ops
    app.router.add_get("/readyz", readyz)
    if metrics:
        app.router.add_get("/metrics", metrics_endpoint)


def metrics_app(ops: Ops) -> web.Application:
    """A web application serving only ``/metrics`` (for ``METRICS_HOST``/``METRICS_PORT``)."""
    app = web.Application()
    app[OPS] = ops
    app.router.add_get("/metrics", metrics_endpoint)
    return app


async def not_ready(ops: Ops) -> dict[str, str]:
    """What keeps the bot from being ready, by part; empty when everything is."""
    problems: dict[str, str] = {}
    try:
        await asyncio.wait_for(_select_one(ops.engine), timeout=ops.db_timeout)
    except TimeoutError:
        problems["database"] = f"no answer within {ops.db_timeout:g} s"
    except Exception as exc:  # any driver error means the same thing to an orchestrator
        problems["database"] = f"unreachable ({type(exc).__name__})"
    if not ops.scheduler_running():
        problems["scheduler"] = "not running"
    for adapter in ops.adapters:
        if not adapter.ready:
            # An adapter may say why (e.g. Discord's gateway reconnecting after a failure).
            problems[adapter.name] = getattr(adapter, "problem", None) or "not connected"
    return problems


async def readyz(request: web.Request) -> web.Response:
    """200 when ready; 503 naming each part that is not."""
    problems = await not_ready(request.app[OPS])
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """Prometheus text format; the outbox depth is counted at each scrape."""
    ops = request.app[OPS]
    try:
        await asyncio.wait_for(ops.metrics.refresh_outbox_depth(ops.sessions), ops.db_timeout)
    except Exception as exc:  # still serve the counters: a scrape must not fail with the DB
        log.warning("outbox depth not counted: %s", type(exc).__name__)
    body = ops.metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _select_one(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
