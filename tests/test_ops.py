"""Operations endpoints over real HTTP: /readyz, /metrics (main and separate address)."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.commands import CommandRegistry
from bot.delivery.worker import OutboxWorker
from bot.net.webhook_address import WebhookPolicy
from bot.runtime.metrics import Metrics
from bot.runtime.operations import (
    add_webhook_sender,
    install_web,
    outcome_recorder,
    start_metrics_server,
)
from bot.runtime.ops_endpoints import Ops, install, not_ready
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, summary_at
from bot.store import alert_store, catalog_store
from bot.store.engine import create_engine, session_factory
from bot.testing import TestAdapter
from bot.web.server import WebServer, create_web_app
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import (
    ANTHROPIC_TIMELINE,
    bot_env,
    catalog_for,
    real_timeline,
    running_bot_process,
    serve_iterable,
)

TIMELINE = real_timeline(ANTHROPIC_TIMELINE)


class FakeAdapter:
    """Stands in for a chat adapter's connection state only."""

    def __init__(self, name: str, ready: bool) -> None:
        self.name, self.ready = name, ready

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens there once the socket is closed


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


@pytest.fixture
async def served(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[tuple[str, Ops]]:
    web_app = create_web_app(clock=clock)
    ops = Ops(engine=engine, sessions=session_factory(engine), metrics=Metrics())
    install(web_app, ops)
    server = WebServer(web_app, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.bound_port}", ops
    finally:
        await server.stop()


async def test_readyz_answers_200_when_everything_is_up(served: tuple[str, Ops]) -> None:
    base, ops = served
    scheduler = AsyncIOScheduler()
    scheduler.start(paused=True)  # a follower process: paused, but running
    try:
        ops.scheduler_running = lambda: bool(scheduler.running)
        ops.adapters = [FakeAdapter("discord", True), FakeAdapter("slack", True)]
        status, kind, body = await get(base + "/readyz")
    finally:
        scheduler.shutdown(wait=False)
    assert (status, kind) == (200, "application/json; charset=utf-8")
    assert '"ready"' in body
    assert (await get(base + "/healthz"))[0] == 200


async def test_readyz_names_each_part_that_is_not_ready(served: tuple[str, Ops]) -> None:
    base, ops = served
    ops.adapters = [FakeAdapter("discord", False), FakeAdapter("console", True)]
    status, _, body = await get(base + "/readyz")
    assert status == 503
    assert '"scheduler": "not running"' in body
    assert '"discord": "not connected"' in body
    assert "console" not in body
    assert "database" not in body


async def test_readyz_is_503_when_the_database_is_gone(clock: FakeClock) -> None:
    gone = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing")
    ops = Ops(engine=gone, sessions=session_factory(gone), metrics=Metrics())
    ops.scheduler_running = lambda: True
    try:
        problems = await not_ready(ops)
        web_app = create_web_app(clock=clock)
        install(web_app, ops)
        server = WebServer(web_app, host="127.0.0.1", port=0)
        await server.start()
        try:
            status, _, body = await get(f"http://127.0.0.1:{server.bound_port}/readyz")
            metrics_status, _, metrics_body = await get(
                f"http://127.0.0.1:{server.bound_port}/metrics"
            )
        finally:
            await server.stop()
    finally:
        await gone.dispose()
    assert list(problems) == ["database"]
    assert problems["database"].startswith("unreachable")
    assert status == 503
    assert '"database"' in body
    # The counters are still served while the database is away.
    assert metrics_status == 200
    assert "outagebot_polls_total" in metrics_body


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_polls_are_counted_per_kind_and_result_and_timed_unless_skipped() -> None:
    metrics = Metrics()
    for kind, result, seconds in [
        ("statuspage", "unchanged", 0.02),
        ("statuspage", "unchanged", 0.03),
        ("statuspage", "ok", 0.2),
        ("feed", "unchanged", 0.04),
        ("statuspage", "skipped", 0.0),
        ("statuspage", "failed", 7.0),
    ]:
        metrics.poll_done(kind, result, seconds)
    text = metrics.render().decode()
    assert sample(text, "outagebot_polls_total", kind="statuspage", result="unchanged") == 2
    assert sample(text, "outagebot_polls_total", kind="statuspage", result="ok") == 1
    assert sample(text, "outagebot_polls_total", kind="statuspage", result="skipped") == 1
    assert sample(text, "outagebot_polls_total", kind="feed", result="unchanged") == 1
    # A skipped poll (backing off) read nothing: not timed.
    assert sample(text, "outagebot_poll_duration_seconds_count", kind="statuspage") == 4
    assert sample(text, "outagebot_poll_duration_seconds_sum", kind="statuspage") == pytest.approx(
        7.25
    )
    assert sample(text, "outagebot_poll_duration_seconds_count", kind="feed") == 1


async def test_metrics_move_after_a_poll_a_command_and_a_delivery(
    engine: AsyncEngine, clock: FakeClock, served: tuple[str, Ops]
) -> None:
    base, ops = served
    async with FakeStatusServer() as status_page, new_http_session(user_agent="tests") as http:
        catalog = catalog_for({"claude": status_page.url(SUMMARY_PATH)})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=HttpFetcher(http, timeout=1),
            prober=HttpProber(http),
            clock=clock,
            record_events=lambda s, e, n: alert_store.record_alert_events(
                session=s, events=e, now=n
            ),
            on_events=ops.metrics.events_detected,
            on_poll=ops.metrics.poll_done,
        )
        registry = load_cogs(CommandRegistry(on_answered=ops.metrics.command_done))
        deps = AppDeps(catalog=catalog, sessions=sessions, registry=registry)
        chat = RecordingSender()
        senders: dict[str, object] = {"test": chat}
        webhooks = add_webhook_sender(
            senders,  # type: ignore[arg-type]
            settings=Settings(_env_file=None),  # type: ignore[call-arg]
            deps=deps,
            clock=clock,
        )
        worker = OutboxWorker(
            sessions=sessions,
            senders=senders,  # type: ignore[arg-type]
            catalog=catalog,
            clock=clock,
            on_outcome=outcome_recorder(ops.metrics, webhooks),
        )

        moderator = TestAdapter.of(deps, clock, user="mod", community="A", channel="a1")

        async def say(command: str, **options: str) -> None:
            await moderator.invoke(command, options, admin=True)

        await say("subscribe", service="claude")
        await say("no-such-command")
        before = (await get(base + "/metrics"))[2]
        clock.now = TIMELINE.started_at + timedelta(minutes=30)
        status_page.set_json(SUMMARY_PATH, summary_at(TIMELINE, clock.now))
        status_page.set_json("/api/v2/incidents.json", incidents_at(TIMELINE, clock.now))
        await poller.poll_all()
        waiting = (await get(base + "/metrics"))[2]
        await worker.run_once()
        status, kind, after = await get(base + "/metrics")
    assert status == 200
    assert kind.startswith("text/plain; version=0.0.4")
    assert sample(before, "outagebot_polls_total") == 0
    assert sample(after, "outagebot_polls_total", kind="statuspage", result="ok") == 1
    assert sample(after, "outagebot_poll_duration_seconds_count", kind="statuspage") == 1
    assert sample(after, "outagebot_detection_events_total", kind="incident_opened") >= 1
    assert sample(waiting, "outagebot_outbox_depth", platform="test") == 1
    assert sample(after, "outagebot_outbox_depth", platform="test") == 0
    assert sample(after, "outagebot_deliveries_total", platform="test", result="done") == 1
    assert [c.action for c in chat.calls] == ["send"]
    assert (
        sample(after, "outagebot_command_duration_seconds_count", command="subscribe", outcome="ok")
        == 1
    )
    assert (
        sample(
            after, "outagebot_command_duration_seconds_count", command="unknown", outcome="unknown"
        )
        == 1
    )


async def test_metrics_on_a_separate_address(engine: AsyncEngine, clock: FakeClock) -> None:
    settings = Settings(_env_file=None, metrics_host="127.0.0.1", metrics_port=0)  # type: ignore[call-arg]
    deps = AppDeps(
        catalog=catalog_for({"claude": "https://status.example.com/api/v2/summary.json"}),
        sessions=session_factory(engine),
        registry=CommandRegistry(),
        webhook_policy=WebhookPolicy(),
    )
    web_app = create_web_app(clock=clock)
    metrics = Metrics()
    metrics.reports.inc()
    _, metrics_server = install_web(
        web_app, settings=settings, deps=deps, engine=engine, clock=clock, metrics=metrics
    )
    main = WebServer(web_app, host="127.0.0.1", port=0)
    await main.start()
    assert metrics_server is not None
    assert await start_metrics_server(metrics_server)
    try:
        on_main = await get(f"http://127.0.0.1:{main.bound_port}/metrics")
        _, _, text = await get(f"http://127.0.0.1:{metrics_server.bound_port}/metrics")
        readyz_main = (await get(f"http://127.0.0.1:{main.bound_port}/readyz"))[0]
    finally:
        await metrics_server.stop()
        await main.stop()
    assert on_main[0] == 404
    assert sample(text, "outagebot_reports_ingested_total") == 1
    assert readyz_main == 503  # the main server keeps /readyz (no scheduler in this test)


async def test_the_real_process_is_ready_exports_metrics_and_logs_json(tmp_path: Path) -> None:
    async with FakeStatusServer() as status_page:
        catalog = serve_iterable(status_page, tmp_path)
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="INFO",
            LOG_FORMAT="json",
            CONSOLE="off",
            API_ADMIN_TOKEN="ops-admin-token-0123456789abcdefgh",
        )
        async with running_bot_process(tmp_path, env) as bot:
            await bot.read_until(r"iterable is now operational")
            ready = await get(bot.base_url + "/readyz")
            _, _, metrics = await get(bot.base_url + "/metrics")
            async with (
                aiohttp.ClientSession() as http,
                http.get(
                    bot.base_url + "/api/v1/webhooks",
                    headers={"Authorization": "Bearer ops-admin-token-0123456789abcdefgh"},
                ) as response,
            ):
                api = (response.status, await response.json())
            assert await bot.stop() == 0
    assert ready[0] == 200, ready
    assert sample(metrics, "outagebot_polls_total", kind="statuspage", result="ok") >= 1
    assert api == (200, {"webhooks": []})
    lines = [line for line in bot.log.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert {"ts", "level", "logger", "message"} <= set(entries[0])
    assert any(e["message"] == "shutting down" for e in entries)
    assert "ops-admin-token-0123456789" not in "".join(lines)
