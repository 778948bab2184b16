"""`outagebot demo`: a real outage replayed offline, start to finish, in about a minute.

A local status page (aiohttp on 127.0.0.1) serves the Statuspage payloads a real incident's page
served, on an accelerated clock; the real poller, detection, outbox and console sender run
against it, so what you see is exactly what a subscribed channel would have seen.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from aiohttp import web

from bot.adapters.console_sender import CONSOLE_PLATFORM, ConsoleSender
from bot.delivery.worker import OutboxWorker
from bot.settings import Settings
from bot.sources.timeline import Timeline, incidents_at, parse_timeline, summary_at
from bot.store import subscription_store
from bot.store.subscription_store import Scope

TIMELINE_FILE = "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"


class ReplayClock:
    """Virtual time: the incident's own clock, moved forward one step at a time.

    Stepped rather than tied to the wall clock, so a slow machine shows the same story: each
    poll sees exactly the updates posted up to its step, however long the poll itself took.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def advance(self, step: timedelta) -> None:
        """Move virtual time forward by ``step``."""
        self._now += step


def load_demo_timeline() -> Timeline:
    """The shipped real incident."""
    text = resources.files("bot.demo.data").joinpath(TIMELINE_FILE).read_text("utf-8")
    return parse_timeline(text)


async def serve_replay(timeline: Timeline, clock: Callable[[], datetime]) -> web.AppRunner:
    """Start the fake status page; returns its runner (port in ``runner.addresses``)."""

    async def summary(_: web.Request) -> web.Response:
        return web.json_response(summary_at(timeline, clock()))

    async def incidents(_: web.Request) -> web.Response:
        return web.json_response(incidents_at(timeline, clock()))

    app = web.Application()
    app.router.add_get("/api/v2/summary.json", summary)
    app.router.add_get("/api/v2/incidents.json", incidents)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def run_demo(*, speed: float, write: Callable[[str], None]) -> int:
    """Play the outage; returns 0 once the postmortem has been shown."""
    from bot.app import open_app  # the composition root; imported late, it pulls in everything

    timeline = load_demo_timeline()
    start = timeline.started_at - timedelta(minutes=10)
    clock = ReplayClock(start)
    end = timeline.updates[-1].posted_at + timedelta(minutes=5)
    runner = await serve_replay(timeline, clock)
    port = runner.addresses[0][1]
    with tempfile.TemporaryDirectory(prefix="outagebot-demo-") as folder:
        catalog = Path(folder) / "catalog.toml"
        catalog.write_text(
            "[[service]]\n"
            'id = "claude"\nname = "Claude (replay)"\nprovider = "Anthropic"\n'
            f'status_page = "https://{timeline.host}"\n'
            '[[service.source]]\nkind = "statuspage"\n'
            f'url = "http://127.0.0.1:{port}/api/v2/summary.json"\n',
            encoding="utf-8",
        )
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite+aiosqlite:///{Path(folder) / 'demo.db'}",
            catalog_path=catalog,
            http_timeout_seconds=5,
        )
        write(
            f"Replaying “{timeline.title}” ({timeline.host}, {timeline.started_at:%d %b %Y}) "
            f"at {speed:.0f}× speed. This console is subscribed to it.\n"
        )
        try:
            async with open_app(settings, clock=clock) as app:
                async with app.deps.sessions() as session:
                    await subscription_store.upsert_subscription(
                        session=session,
                        scope=Scope(CONSOLE_PLATFORM, "demo"),
                        channel_id="demo",
                        service_id="claude",
                        components=(),
                        min_severity="minor",
                        mention_role=None,
                        early_warnings=False,
                        maintenance=True,
                        now=clock(),
                    )
                    await session.commit()
                sender = ConsoleSender(write=write, clock=clock)
                worker = OutboxWorker(
                    sessions=app.deps.sessions,
                    senders={CONSOLE_PLATFORM: sender},
                    catalog=app.deps.catalog,
                    clock=clock,
                )
                step = timedelta(minutes=2)  # a poll every two minutes of incident time
                pause = max(0.05, step.total_seconds() / speed)  # paces the show for a reader
                while clock() < end:
                    await app.poller.poll_all()
                    await worker.run_once()
                    await asyncio.sleep(pause)
                    clock.advance(step)
        finally:
            await runner.cleanup()
    write(
        "\nThat was the whole outage: one message, edited in place, every update in its thread.\n"
    )
    return 0


def main_demo(speed: float) -> int:
    """Entry point used by the CLI."""

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return asyncio.run(run_demo(speed=speed, write=write))
