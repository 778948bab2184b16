"""SIGTERM ends the bot within SHUTDOWN_TIMEOUT_SECONDS, even while a status page and an
outgoing webhook hang: Docker kills a process that overruns its stop grace period."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from pathlib import Path

import pytest

from bot.app import run
from bot.core.events import EventKind
from bot.runtime.shutdown import ShutdownDeadline
from bot.settings import Settings
from bot.sources.catalog import load_catalog
from bot.store import catalog_store, migrate, webhook_store
from bot.store.engine import create_engine, session_factory
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import outage_event, record_event, write_catalog

HOOK = "/hook"
DEADLINE_SECONDS = 1.0
SLACK_SECONDS = 1.0
"""What the event loop may add past the deadline: closing sessions and the database."""
HANGS_SECONDS = 60.0
"""The hung requests' own timeouts: far beyond the deadline, so only the deadline ends them."""


async def stage_webhook_delivery(database_url: str, catalog: Path, hook_url: str) -> None:
    """A webhook target subscribed to "svc" with an alert waiting in the outbox."""
    clock = FakeClock()
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            await catalog_store.sync_catalog(session=session, catalog=load_catalog(catalog))
            target, _ = await webhook_store.add_target(
                session=session,
                owner_platform="test",
                owner_community="A",
                url=hook_url,
                secret="whsec_" + "s" * 32,
                notice_channel_id=None,
                now=clock.now,
            )
            await session.flush()
            await webhook_store.subscribe_target(
                session=session,
                target=target,
                service_id="svc",
                components=(),
                min_severity="minor",
                maintenance=True,
                now=clock.now,
            )
            await session.commit()
        opened = outage_event(EventKind.INCIDENT_OPENED, "opened", "investigating", "Down", clock)
        await record_event(engine, clock, opened)
    finally:
        await engine.dispose()


async def test_sigterm_ends_a_busy_run_within_the_shutdown_deadline(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeStatusServer() as server:
        server.set_script(SUMMARY_PATH, [Step(hang=True)])
        server.set_script(HOOK, [Step(hang=True)])
        catalog = write_catalog(tmp_path / "catalog.toml", {"svc": server.url(SUMMARY_PATH)})
        database_url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
        await stage_webhook_delivery(database_url, catalog, server.url(HOOK))
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            catalog_path=catalog,
            web_port=0,
            http_timeout_seconds=HANGS_SECONDS,
            webhook_timeout_seconds=HANGS_SECONDS,
            allow_private_webhooks=True,
            shutdown_timeout_seconds=DEADLINE_SECONDS,
        )
        running = asyncio.create_task(run(settings, console=False))
        try:
            # Busy: a poll and a delivery are both waiting on answers that never come.
            await asyncio.wait_for(server.wait_for(SUMMARY_PATH), HANGS_SECONDS)
            await asyncio.wait_for(server.wait_for(HOOK), HANGS_SECONDS)
            signalled = time.monotonic()
            os.kill(os.getpid(), signal.SIGTERM)  # run() handles it on the event loop
            done, _ = await asyncio.wait({running}, timeout=DEADLINE_SECONDS + SLACK_SECONDS)
            took = time.monotonic() - signalled
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        assert done == {running}, f"still shutting down after {took:.1f} s"
        assert running.result() == 0
        assert took < DEADLINE_SECONDS + SLACK_SECONDS
        # Stopping what overran is the plan, not a failure: no ERROR, no traceback.
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert errors == [], [r.getMessage() for r in errors]


async def test_the_deadline_is_shared_by_the_steps() -> None:
    """A step that overruns is cancelled when the budget is spent; later steps get what is
    left (here nothing), not a budget of their own."""
    now = [100.0]
    deadline = ShutdownDeadline(8.0, monotonic=lambda: now[0])
    assert deadline.remaining(keep=deadline.tail) == pytest.approx(6.4)
    now[0] += 5.0
    assert deadline.remaining() == pytest.approx(3.0)
    now[0] += 4.0
    assert deadline.remaining() == 0.0
    hung = asyncio.get_running_loop().create_future()
    await deadline.run("a hung step", hung)
    assert hung.cancelled()
