"""Composition root: builds every part from settings, starts it in order, stops it in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

import aiohttp
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.schedulers.base import STATE_RUNNING
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import __version__
from bot.adapters.base import Adapter
from bot.adapters.console import ConsoleAdapter
from bot.adapters.console_sender import CONSOLE_PLATFORM, ConsoleSender
from bot.core.commands import CommandRegistry
from bot.core.events import DetectionEvent
from bot.core.timeutil import Clock, system_clock
from bot.core.wording import plural
from bot.delivery.claim import OutboxLink, ShardRoute
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.delivery.worker import OutboxWorker
from bot.errors import ConfigError
from bot.net.address_policy import AddressPolicy
from bot.runtime.leader import LeaderElector, asyncpg_connector, single_process
from bot.runtime.metrics import Metrics
from bot.runtime.operations import (
    add_webhook_sender,
    install_web,
    instrument,
    start_metrics_server,
    webhook_policy,
)
from bot.runtime.scheduling import (
    add_poll_job,
    add_retention_job,
    create_scheduler,
    job_id,
    take_over,
)
from bot.runtime.shutdown import ShutdownDeadline
from bot.services.crowd_watch import NUDGE_KEY, CrowdWatch
from bot.services.custom_services import CustomServices, builtin_source_urls, load_custom_services
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.sources.catalog import CatalogError, load_catalog
from bot.sources.fetch import HttpFetcher, guarded_route, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import alert_store, migrate, repository
from bot.store.availability import DatabaseOutageLog
from bot.store.engine import create_engine, is_sqlite, session_factory
from bot.store.retention import RetentionJob, RetentionPolicy
from bot.web.server import WebServer, create_web_app
from bot.web.webhooks import StatuspageWebhook, parse_webhook_secrets
from cogs import load_cogs

log = logging.getLogger(__name__)

CUSTOM_REFRESH_SECONDS = 60.0
USER_AGENT = f"outagebot/{__version__} (+status monitoring; polite conditional polling)"


@dataclass(frozen=True, slots=True)
class App:
    """The built object graph of one running bot."""

    settings: Settings
    deps: AppDeps
    poller: StatusPoller
    engine: AsyncEngine
    clock: Clock
    chat_http: aiohttp.ClientSession
    """For chat platform APIs (the outbox's senders), apart from the status-page session."""


@contextlib.asynccontextmanager
async def open_app(
    settings: Settings, *, clock: Clock = system_clock, source_policy: AddressPolicy | None = None
) -> AsyncIterator[App]:
    """Open the database (migrated), the catalog, HTTP session and poller; close them after."""
    catalog = load_catalog(settings.catalog_path)
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        async with sessions() as session:
            for custom in await load_custom_services(session=session):
                try:
                    catalog.add(custom)
                except CatalogError as exc:  # a later built-in took its name: keep the built-in
                    log.warning("custom service %s not loaded: %s", custom.id, exc)
            await repository.sync_catalog(session=session, catalog=catalog)
        # Two sessions: status pages get 4 connections per host (politeness); chat APIs get
        # enough to keep a fan-out at the platform's own rate limit. Custom services' URLs
        # (anything not in the built-in catalog) go through a third, whose connector reaches
        # public addresses only (`source_policy`: tests inject one).
        async with (
            new_http_session(user_agent=USER_AGENT) as http,
            new_http_session(user_agent=USER_AGENT, limit_per_host=64) as chat_http,
            guarded_route(
                source_policy or AddressPolicy(allow_private=settings.allow_private_sources),
                user_agent=USER_AGENT,
                trusts=builtin_source_urls(catalog).__contains__,
            ) as custom_route,
        ):
            fetcher = HttpFetcher(
                http,
                timeout=settings.http_timeout_seconds,
                max_body_bytes=settings.http_max_body_bytes,
                guarded=custom_route,
            )
            poller = StatusPoller(
                catalog=catalog,
                sessions=sessions,
                fetcher=fetcher,
                prober=HttpProber(http),
                clock=clock,
                interval_seconds=settings.poll_interval_seconds,
                record_events=_record_alert_events,
            )
            custom_services = CustomServices(
                catalog=catalog,
                sessions=sessions,
                fetcher=fetcher,
                poller=poller,
                clock=clock,
            )
            deps = AppDeps(
                catalog=catalog,
                sessions=sessions,
                registry=load_cogs(CommandRegistry()),
                custom_services=custom_services,
                webhook_policy=webhook_policy(settings),
            )
            yield App(
                settings=settings,
                deps=deps,
                poller=poller,
                engine=engine,
                clock=clock,
                chat_http=chat_http,
            )
    finally:
        await engine.dispose()


async def run(
    settings: Settings,
    *,
    console: bool,
    clock: Clock = system_clock,
    stdin: BinaryIO | None = None,
    write: Callable[[str], None] | None = None,
) -> int:
    """Run the bot until SIGINT/SIGTERM (or `quit` in the console). Returns an exit status."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        # SQLite: refuse to run beside another process on the same file, before touching it.
        with single_process(settings.database_url):
            async with open_app(settings, clock=clock) as app:
                await _serve(
                    app,
                    stop=stop,
                    console=console,
                    stdin=stdin or sys.stdin.buffer,
                    write=write or _stdout,
                )
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0


async def _serve(
    app: App, *, stop: asyncio.Event, console: bool, stdin: BinaryIO, write: Callable[[str], None]
) -> None:
    settings = app.settings
    web_app = create_web_app(
        clock=app.clock,
        webhook=_webhook(app),
        deps=app.deps,
        rate_limit_per_minute=settings.api_rate_limit_per_minute,
        trusted_proxies=settings.trusted_proxies,
    )
    metrics = Metrics()
    ops, metrics_server = install_web(
        web_app,
        settings=settings,
        deps=app.deps,
        engine=app.engine,
        clock=app.clock,
        metrics=metrics,
    )
    adapters: list[Adapter] = []
    senders: dict[str, PlatformSender | AlertDataSender] = {}
    shards: ShardRoute | None = None
    if "slack" in settings.enabled_chat_platforms:
        from bot.adapters.slack import create_slack_adapter  # lazy: only when configured

        # Before the web server starts: aiohttp freezes its routes then (HTTP mode mounts one).
        slack = create_slack_adapter(settings, app.deps, app.clock, web_app=web_app)
        adapters.append(slack)
        senders[slack.sender.platform] = slack.sender
    if settings.discord_token is not None:
        from bot.adapters.discord import create_discord_adapter
        from bot.adapters.discord.sender import DiscordSender

        adapters.append(create_discord_adapter(settings, app.deps, app.clock))
        shards = _shard_route(settings)
        senders["discord"] = DiscordSender(
            token=settings.discord_token.get_secret_value(),
            api_base=settings.discord_api_base,
            session=app.chat_http,
            clock=app.clock,
        )
    web = WebServer(web_app, host=settings.web_host, port=settings.web_port)
    try:
        await web.start()
        web_running = True
    except OSError as exc:
        web_running = False
        log.error(
            "web server not started: cannot listen on %s:%s (%s); set WEB_PORT to a free port",
            settings.web_host,
            settings.web_port,
            exc.strerror or exc,
        )
    if console:
        # Sources, not services: one page can serve several services (and one service can
        # have several sources), so the two counts differ; README states both the same way.
        sources = plural(len(app.poller.urls), "source")
        write(f"Checking {sources} of {plural(len(app.deps.catalog), 'service')}…\n")
        await _initial_poll(app)
        adapters.append(
            ConsoleAdapter(
                deps=app.deps, clock=app.clock, stdin=stdin, write=write, on_quit=stop.set
            )
        )
    _log_chat_platforms(settings)
    scheduler = create_scheduler(
        app.poller,
        interval_seconds=settings.poll_interval_seconds,
        first_run=None if console else app.clock(),
    )
    _follow_custom_services(app, scheduler)
    if console:
        senders[CONSOLE_PLATFORM] = ConsoleSender(write=write, clock=app.clock)
    webhooks = add_webhook_sender(senders, settings=settings, deps=app.deps, clock=app.clock)
    postgres = not is_sqlite(settings.database_url)
    worker = OutboxWorker(
        sessions=app.deps.sessions,
        senders=senders,
        catalog=app.deps.catalog,
        clock=app.clock,
        link=OutboxLink(asyncpg_connector(settings.database_url)) if postgres else None,
        shards=shards,
    )
    app.poller.on_events = lambda _events: worker.wake()
    instrument(
        metrics, poller=app.poller, registry=app.deps.registry, worker=worker, webhooks=webhooks
    )
    ops.adapters, ops.scheduler_running = adapters, lambda: bool(scheduler.running)
    metrics_running = await start_metrics_server(metrics_server)
    _schedule_reminders(app, scheduler)
    watch = CrowdWatch(
        sessions=app.deps.sessions,
        catalog=app.deps.catalog,
        clock=app.clock,
        on_staged=worker.wake,
    )
    # /report asks for a look within seconds; only where the scheduler runs (the leader), so
    # that two processes never evaluate one service at once. Elsewhere: the leader's next tick.
    app.deps.cache[NUDGE_KEY] = lambda service_id: (
        watch.nudge(service_id) if scheduler.state == STATE_RUNNING else None
    )
    scheduler.add_job(watch.tick, "interval", minutes=1, id="crowd", max_instances=1, coalesce=True)
    add_retention_job(scheduler, _retention(app).run)
    worker_stop = asyncio.Event()
    worker_task = asyncio.create_task(worker.run_forever(worker_stop), name="outbox")
    custom_task = asyncio.create_task(_refresh_custom_services(app, worker_stop), name="custom")
    # Scheduled work (polls, crowd watch, reminders, retention) runs in the leader only.
    scheduler.start(paused=postgres)
    elector = LeaderElector(
        asyncpg_connector(settings.database_url),
        on_elected=lambda: take_over(scheduler, app.clock()),
        on_deposed=scheduler.pause,
        retry_seconds=settings.leader_retry_seconds,
    )
    leader_stop = asyncio.Event()
    elector_task = asyncio.create_task(elector.run(leader_stop)) if postgres else None
    try:
        for adapter in adapters:
            await adapter.start()
        await stop.wait()
        log.info("shutting down")
    finally:
        # One budget for every step, so the process is gone before Docker's SIGKILL.
        deadline = ShutdownDeadline(settings.shutdown_timeout_seconds)
        slow = deadline.tail  # kept back from the steps that can hang, for the quick last ones
        for adapter in reversed(adapters):
            await deadline.run(f"stopping {adapter.name}", adapter.stop(), keep=slow)
        worker_stop.set()
        # Pause first: shutting the scheduler down cancels the polls it is running mid-write.
        scheduler.pause()
        # Part of what is left: drain itself then cancels the stragglers, within the budget.
        drain = min(settings.http_timeout_seconds + 5, deadline.remaining(keep=slow) * 0.8)
        # Side by side: a hung delivery must not eat the time of a poll finishing its write.
        await asyncio.gather(
            deadline.run("the outbox", worker_task, keep=slow),
            deadline.run("custom services", custom_task, keep=slow),
            deadline.run("polls in flight", app.poller.drain(grace_seconds=drain), keep=slow),
        )
        leader_stop.set()
        if elector_task is not None:
            # Resigns after the polls in flight, so no two pollers overlap.
            await deadline.run("leaving the leader election", elector_task)
        scheduler.shutdown(wait=False)
        if web_running:
            await deadline.run("the web server", web.stop())
        if metrics_running and metrics_server is not None:
            await deadline.run("the metrics server", metrics_server.stop())


async def _record_alert_events(
    session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
) -> None:
    await alert_store.record_alert_events(session=session, events=events, now=now)


def _schedule_reminders(app: App, scheduler: AsyncIOScheduler) -> None:
    hours = app.settings.reminder_hours
    if hours <= 0:
        return
    every = timedelta(hours=hours)
    database = DatabaseOutageLog(log, "reminders", clock=app.clock)

    async def remind() -> None:
        with database.watching("staging reminders failed"):
            async with app.deps.sessions() as session:
                await alert_store.stage_reminders(session=session, now=app.clock(), every=every)
                await session.commit()

    scheduler.add_job(remind, "interval", minutes=5, id="reminders", max_instances=1, coalesce=True)


def _retention(app: App) -> RetentionJob:
    policy = RetentionPolicy(
        report_days=app.settings.retention_report_days,
        delivery_days=app.settings.retention_delivery_days,
    )
    return RetentionJob(sessions=app.deps.sessions, policy=policy, clock=app.clock)


def _shard_route(settings: Settings) -> ShardRoute | None:
    from bot.adapters.discord import discord_config

    config = discord_config(settings)
    if config.shard_ids is None or config.shard_count is None:
        return None  # every shard runs here
    return ShardRoute(shard_ids=tuple(config.shard_ids), shard_count=config.shard_count)


def _webhook(app: App) -> StatuspageWebhook | None:
    secrets = app.settings.statuspage_webhook_secrets
    if secrets is None:
        return None
    try:
        pairs = parse_webhook_secrets(secrets.get_secret_value())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    sources: dict[str, str] = {}
    for service_id, secret in pairs.items():
        service = app.deps.catalog.get(service_id)
        pages = [s.url for s in service.sources if s.kind == "statuspage"] if service else []
        if not pages:
            raise ConfigError(
                f"STATUSPAGE_WEBHOOK_SECRETS names {service_id!r}, which has no statuspage source"
            )
        sources[secret] = pages[0]
    log.info("Statuspage webhooks enabled for %s", ", ".join(sorted(pairs)))
    return StatuspageWebhook(sources_by_secret=sources, ingest=app.poller.ingest_push)


def _follow_custom_services(app: App, scheduler: AsyncIOScheduler) -> None:
    custom = app.deps.custom_services
    if custom is None:
        return
    interval = app.settings.poll_interval_seconds

    def added(urls: list[str]) -> None:
        for url in urls:
            add_poll_job(scheduler, app.poller, url, interval_seconds=interval, first_run=None)

    def dropped(urls: list[str]) -> None:
        for url in urls:
            if scheduler.get_job(job_id(url)):
                scheduler.remove_job(job_id(url))

    custom.on_new_urls, custom.on_dropped_urls = added, dropped


async def _refresh_custom_services(
    app: App, stop: asyncio.Event, *, every_seconds: float = CUSTOM_REFRESH_SECONDS
) -> None:
    # Not a scheduler job: followers keep the scheduler paused, yet must answer for services
    # that `/service add` stored through another process.
    custom = app.deps.custom_services
    database = DatabaseOutageLog(log, "following custom services", clock=app.clock)
    while custom is not None and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        if stop.is_set():
            return
        with database.watching("reloading custom services failed; trying again in a minute"):
            await custom.refresh()


async def _initial_poll(app: App) -> None:
    # Bounded, so a status page that hangs cannot keep the console from starting.
    budget = app.settings.http_timeout_seconds + 5
    try:
        await asyncio.wait_for(app.poller.poll_all(), timeout=budget)
    except TimeoutError:
        log.warning(
            "first poll took longer than %.0f s; answering with what was read so far", budget
        )


def _log_chat_platforms(settings: Settings) -> None:
    if not settings.discord_token:
        log.info("Discord is off: set DISCORD_TOKEN to connect a Discord bot")
    if "slack" not in settings.enabled_chat_platforms:
        log.info(
            "Slack is off: set SLACK_BOT_TOKEN (or SLACK_CLIENT_ID + SLACK_CLIENT_SECRET for "
            "installs) plus SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )


def _stdout(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()
