"""Composition root: builds every part from settings, starts it in order, stops it in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import BinaryIO

import aiohttp
from aiohttp import web
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
from bot.core.observers import Observers
from bot.core.status import SourceKind
from bot.core.timeutil import Clock, system_clock
from bot.core.wording import plural
from bot.delivery.claim import OutboxLink, ShardRoute
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.delivery.worker import OutboxWorker
from bot.errors import ConfigError
from bot.net.address_policy import AddressPolicy
from bot.runtime.heap import settle_startup_heap
from bot.runtime.leader import LeaderElector, single_process
from bot.runtime.lifecycle import Lifecycle, Stop
from bot.runtime.metrics import Metrics
from bot.runtime.operations import (
    add_webhook_sender,
    install_web,
    outcome_recorder,
    start_metrics_server,
    webhook_policy,
)
from bot.runtime.poll_schedule import PollSchedule
from bot.runtime.scheduling import (
    add_jobs,
    create_scheduler,
    follow_custom_polls,
    stand_by,
    take_over,
)
from bot.services.crowd_watch import CrowdWatch
from bot.services.custom_services import (
    CustomServices,
    builtin_source_urls,
    follow_database,
    load_custom_services,
)
from bot.services.deps import AppDeps
from bot.services.reminders import Reminders
from bot.settings import Settings, parse_webhook_secrets
from bot.sources.catalog import CatalogError, load_catalog
from bot.sources.fetch import HttpFetcher, guarded_route, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import alert_store, catalog_store, migrate
from bot.store.engine import create_engine, is_sqlite, session_factory
from bot.store.pg_connection import asyncpg_connector
from bot.store.retention import RetentionJob, RetentionPolicy
from bot.web.server import WebServer, create_web_app
from bot.web.webhooks import StatuspageWebhook
from cogs import load_cogs

log = logging.getLogger(__name__)

USER_AGENT = f"outagebot/{__version__} (+status monitoring; polite conditional polling)"
CHECKED_GATHER_SECONDS = 5.0
""""Last checked" batches are written at least this far apart, gathering the unchanged reads
in between: polls spread over the interval rarely overlap, and a transaction each would cost
twice the reads (bot/sources/checked_writes.py). Shutdown does not wait this out: the poller's
drain() has what is pending written at once."""


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
    events: Observers[Sequence[DetectionEvent]]
    """What the poller detected, once committed: the outbox and the metrics subscribe."""
    metrics: Metrics
    """This app's own Prometheus registry, fed by the poller, the dispatch and the outbox."""


@contextlib.asynccontextmanager
async def open_app(
    settings: Settings, *, clock: Clock = system_clock, source_policy: AddressPolicy | None = None
) -> AsyncIterator[App]:
    """Open the database (migrated), the catalog, HTTP session and poller; close them after."""
    catalog = load_catalog(settings.catalog_path)
    metrics = Metrics()
    events: Observers[Sequence[DetectionEvent]] = Observers()
    events.subscribe(metrics.events_detected)
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
            await catalog_store.sync_catalog(session=session, catalog=catalog)
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
                on_events=events,
                on_poll=metrics.poll_done,
                checked_gather_seconds=CHECKED_GATHER_SECONDS,
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
                registry=load_cogs(CommandRegistry(on_answered=metrics.command_done)),
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
                events=events,
                metrics=metrics,
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
    chat = _chat_platforms(app, web_app)
    if console:
        await _greet(app, write)
        chat.adapters.append(
            ConsoleAdapter(
                deps=app.deps, clock=app.clock, stdin=stdin, write=write, on_quit=stop.set
            )
        )
        chat.senders[CONSOLE_PLATFORM] = ConsoleSender(write=write, clock=app.clock)
    _log_chat_platforms(settings)
    metrics = app.metrics
    webhooks = add_webhook_sender(chat.senders, settings=settings, deps=app.deps, clock=app.clock)
    worker = OutboxWorker(
        sessions=app.deps.sessions,
        senders=chat.senders,
        catalog=app.deps.catalog,
        clock=app.clock,
        on_outcome=outcome_recorder(metrics, webhooks),
        link=OutboxLink(asyncpg_connector(settings.database_url)) if _postgres(app) else None,
        shards=chat.shards,
    )
    app.events.subscribe(lambda _events: worker.wake())
    scheduler = _scheduler(app, worker)
    polls = PollSchedule(
        app.poller.poll,
        app.poller.urls,
        interval_seconds=settings.poll_interval_seconds,
        clock=app.clock,
        # The console has just read every page (_greet); a server reads them all at once.
        first_run=None if console else app.clock(),
        paused=_postgres(app),  # until elected
    )
    if app.deps.custom_services is not None:
        follow_custom_polls(polls, app.deps.custom_services)
    _, metrics_server = install_web(
        web_app,
        settings=settings,
        deps=app.deps,
        engine=app.engine,
        clock=app.clock,
        metrics=metrics,
        adapters=chat.adapters,
        scheduler_running=lambda: bool(scheduler.running),
    )
    async with Lifecycle(settings.shutdown_timeout_seconds) as parts:
        await _start_servers(parts, settings, web_app, metrics_server)
        _start_background_work(parts, app, worker, scheduler, polls)
        for adapter in chat.adapters:
            parts.on_stop(f"stopping {adapter.name}", adapter.stop, slow=True)
            await adapter.start()
        settle_startup_heap()
        await stop.wait()
        log.info("shutting down")


@dataclass(slots=True)
class _ChatPlatforms:
    """The chat adapters that take commands, and the senders the outbox delivers through."""

    adapters: list[Adapter] = field(default_factory=list)
    senders: dict[str, PlatformSender | AlertDataSender] = field(default_factory=dict)
    shards: ShardRoute | None = None
    """Discord: the guilds this process runs, when it runs only some shards."""


def _chat_platforms(app: App, web_app: web.Application) -> _ChatPlatforms:
    settings, chat = app.settings, _ChatPlatforms()
    if "slack" in settings.enabled_chat_platforms:
        from bot.adapters.slack import create_slack_adapter  # lazy: only when configured

        # Before the web server starts: aiohttp freezes its routes then (HTTP mode mounts one).
        slack = create_slack_adapter(settings, app.deps, app.clock, web_app=web_app)
        chat.adapters.append(slack)
        chat.senders[slack.sender.platform] = slack.sender
    if settings.discord_token is not None:
        from bot.adapters.discord import create_discord_adapter
        from bot.adapters.discord.sender import DiscordSender

        chat.adapters.append(create_discord_adapter(settings, app.deps, app.clock))
        chat.shards = _shard_route(settings)
        chat.senders["discord"] = DiscordSender(
            token=settings.discord_token.get_secret_value(),
            api_base=settings.discord_api_base,
            session=app.chat_http,
            clock=app.clock,
        )
    return chat


def _scheduler(app: App, worker: OutboxWorker) -> AsyncIOScheduler:
    """The jobs each part declares. It runs in the leader only (see leader.py)."""
    scheduler = create_scheduler()
    watch = CrowdWatch(
        sessions=app.deps.sessions,
        catalog=app.deps.catalog,
        clock=app.clock,
        on_staged=worker.wake,
    )
    # /report asks for a look within seconds; only where the scheduler runs (the leader), so
    # that two processes never evaluate one service at once. Elsewhere: the leader's next tick.
    app.deps.reports.counted.subscribe(
        lambda service_id: watch.nudge(service_id) if scheduler.state == STATE_RUNNING else None
    )
    reminders = Reminders(
        sessions=app.deps.sessions,
        clock=app.clock,
        every=timedelta(hours=max(0, app.settings.reminder_hours)),
    )
    policy = RetentionPolicy(
        report_days=app.settings.retention_report_days,
        delivery_days=app.settings.retention_delivery_days,
    )
    retention = RetentionJob(sessions=app.deps.sessions, policy=policy, clock=app.clock)
    add_jobs(scheduler, [*watch.jobs(), *reminders.jobs(), *retention.jobs()])
    return scheduler


async def _start_servers(
    parts: Lifecycle, settings: Settings, web_app: web.Application, metrics: WebServer | None
) -> None:
    if metrics is not None and await start_metrics_server(metrics):
        parts.on_stop("the metrics server", metrics.stop)
    web_server = WebServer(web_app, host=settings.web_host, port=settings.web_port)
    try:
        await web_server.start()
    except OSError as exc:
        log.error(
            "web server not started: cannot listen on %s:%s (%s); set WEB_PORT to a free port",
            settings.web_host,
            settings.web_port,
            exc.strerror or exc,
        )
    else:
        parts.on_stop("the web server", web_server.stop)


def _start_background_work(
    parts: Lifecycle,
    app: App,
    worker: OutboxWorker,
    scheduler: AsyncIOScheduler,
    polls: PollSchedule,
) -> None:
    """The outbox, the custom-service follower, the polls, the scheduler and (PostgreSQL) the
    election."""
    stopping = asyncio.Event()
    steps: dict[str, Stop] = {}
    outbox = asyncio.create_task(worker.run_forever(stopping), name="outbox")
    steps["the outbox"] = lambda: outbox
    if app.deps.custom_services is not None:
        follow = follow_database(app.deps.custom_services, stopping, clock=app.clock)
        custom = asyncio.create_task(follow, name="custom")
        steps["custom services"] = lambda: custom
    # Part of what is left: the drain itself then cancels the stragglers, within the budget.
    budget = app.settings.http_timeout_seconds + 5
    steps["polls in flight"] = lambda: app.poller.drain(
        grace_seconds=min(budget, parts.deadline.remaining(keep=parts.deadline.tail) * 0.8)
    )
    parts.callback(scheduler.shutdown, False)
    polling = asyncio.create_task(polls.run(), name="polls")
    steps["the poll schedule"] = lambda: polling
    # Scheduled work (polls, crowd watch, reminders, retention) runs in the leader only.
    scheduler.start(paused=_postgres(app))
    if _postgres(app):
        elector = LeaderElector(
            asyncpg_connector(app.settings.database_url),
            on_elected=lambda: take_over(scheduler, polls, app.clock()),
            on_deposed=lambda: stand_by(scheduler, polls),
            retry_seconds=app.settings.leader_retry_seconds,
        )
        leaving = asyncio.Event()
        electing = asyncio.create_task(elector.run(leaving), name="leader")

        async def resign() -> None:  # after the polls in flight, so no two pollers overlap
            leaving.set()
            await electing

        parts.on_stop("leaving the leader election", resign)

    def halt() -> None:
        stopping.set()
        polls.close()  # no new polls; those running are drained ("polls in flight")
        # Pause first: shutting the scheduler down cancels the jobs it is running mid-write.
        scheduler.pause()

    parts.on_stop_together(steps, first=halt)


def _postgres(app: App) -> bool:
    return not is_sqlite(app.settings.database_url)


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
        pages = (
            [s.url for s in service.sources if s.kind == SourceKind.STATUSPAGE] if service else []
        )
        if not pages:
            raise ConfigError(
                f"STATUSPAGE_WEBHOOK_SECRETS names {service_id!r}, which has no statuspage source"
            )
        sources[secret] = pages[0]
    log.info("Statuspage webhooks enabled for %s", ", ".join(sorted(pairs)))
    return StatuspageWebhook(sources_by_secret=sources, ingest=app.poller.ingest_push)


async def _greet(app: App, write: Callable[[str], None]) -> None:
    """Console: say what is checked, then read every page once (bounded, so a status page
    that hangs cannot keep the console from starting)."""
    # Sources, not services: one page can serve several services (and one service can have
    # several sources), so the two counts differ; README states both the same way.
    sources = plural(len(app.poller.urls), "source")
    write(f"Checking {sources} of {plural(len(app.deps.catalog), 'service')}…\n")
    budget = app.settings.http_timeout_seconds + 5
    try:
        await asyncio.wait_for(app.poller.poll_all(), timeout=budget)
    except TimeoutError:
        log.warning(
            "first poll took longer than %.0f s; answering with what was read so far", budget
        )


async def _record_alert_events(
    session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
) -> None:
    await alert_store.record_alert_events(session=session, events=events, now=now)


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
