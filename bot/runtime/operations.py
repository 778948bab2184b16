"""Wiring of the operations features into the running app: metrics hooks, ``/readyz``,
``/metrics`` (on the main web server or an address of its own), the outgoing webhook sender
and its admin API. Kept apart from `bot.app` so the composition root stays a table of parts."""

from __future__ import annotations

import logging
from collections.abc import Callable, MutableMapping, Sequence

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bot import __version__
from bot.adapters.base import Adapter
from bot.core.timeutil import Clock
from bot.delivery.round_delivery import Tried
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.delivery.webhook_sender import WebhookSender, owner_notifier
from bot.delivery.worker import OutcomeHook
from bot.net.webhook_address import WebhookPolicy
from bot.runtime import ops_endpoints
from bot.runtime.metrics import Metrics
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.web import webhook_api
from bot.web.server import WebServer

log = logging.getLogger(__name__)


def webhook_policy(settings: Settings) -> WebhookPolicy:
    """Where outgoing webhooks may point, per the settings."""
    return WebhookPolicy(allow_private=settings.allow_private_webhooks)


def install_web(
    web_app: web.Application,
    *,
    settings: Settings,
    deps: AppDeps,
    engine: AsyncEngine,
    clock: Clock,
    metrics: Metrics,
    adapters: Sequence[Adapter] = (),
    scheduler_running: Callable[[], bool] = lambda: False,
) -> tuple[ops_endpoints.Ops, WebServer | None]:
    """Mount /readyz (which asks ``adapters`` and ``scheduler_running``), /metrics and the
    webhook admin API; returns the readiness state and the separate metrics server, when
    ``METRICS_HOST``/``METRICS_PORT`` ask for one."""
    ops = ops_endpoints.Ops(
        engine=engine,
        sessions=deps.sessions,
        metrics=metrics,
        scheduler_running=scheduler_running,
        adapters=adapters,
    )
    separate = settings.metrics_host is not None or settings.metrics_port is not None
    ops_endpoints.install(web_app, ops, metrics=not separate)
    if settings.api_admin_token is not None:
        api = webhook_api.WebhookApi(
            sessions=deps.sessions,
            catalog=deps.catalog,
            clock=clock,
            policy=deps.webhook_policy or webhook_policy(settings),
            admin_token=settings.api_admin_token.get_secret_value(),
        )
        webhook_api.install(web_app, api)
    server = None
    if separate:
        server = WebServer(
            ops_endpoints.metrics_app(ops),
            host=settings.metrics_host or settings.web_host,
            port=settings.metrics_port if settings.metrics_port is not None else 9090,
        )
    return ops, server


def add_webhook_sender(
    senders: MutableMapping[str, PlatformSender | AlertDataSender],
    *,
    settings: Settings,
    deps: AppDeps,
    clock: Clock,
) -> WebhookSender:
    """The ``webhook`` platform of the outbox, telling owners through the chat senders."""
    sender = WebhookSender(
        sessions=deps.sessions,
        clock=clock,
        policy=deps.webhook_policy or webhook_policy(settings),
        user_agent=f"outagebot/{__version__} (+outgoing webhook)",
        timeout=settings.webhook_timeout_seconds,
        max_failures=settings.webhook_max_failures,
        on_disabled=owner_notifier(senders),
    )
    senders[sender.platform] = sender
    return sender


def outcome_recorder(metrics: Metrics, webhooks: WebhookSender) -> OutcomeHook:
    """The outbox worker's ``on_outcome``: counted, and told to the webhook sender (which
    disables a webhook after repeated failures)."""

    async def on_outcome(delivery: Tried, outcome: str) -> None:
        metrics.delivery_done(delivery.platform, outcome)
        await webhooks.note_outcome(delivery, outcome)

    return on_outcome


async def start_metrics_server(server: WebServer | None) -> bool:
    """Start the separate metrics server; False (logged) when its address is taken."""
    if server is None:
        return False
    try:
        await server.start()
    except OSError as exc:
        log.error("metrics server not started: %s; set METRICS_PORT to a free port", exc.strerror)
        return False
    return True
