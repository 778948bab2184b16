"""Slack adapter: one ``/outage`` command, Block Kit replies, Socket Mode or HTTP mode.

`create_slack_adapter` builds it from settings. With ``SLACK_APP_TOKEN`` it connects over Socket
Mode; with ``SLACK_SIGNING_SECRET`` it mounts ``POST /slack/events`` on the bot's web app (both
may be on at once). Its `sender` is the outbox's Slack `PlatformSender`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.app import SlackCommandApp
from bot.adapters.slack.http import EVENTS_PATH, SlackHttpEndpoint
from bot.adapters.slack.manifest import build_manifest
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.socket_mode import SlackSocketMode
from bot.core.timeutil import Clock
from bot.deps import AppDeps
from bot.errors import ConfigError
from bot.settings import Settings

log = logging.getLogger(__name__)

__all__ = [
    "EVENTS_PATH",
    "SlackAdapter",
    "SlackSender",
    "build_manifest",
    "create_slack_adapter",
    "web_client",
]

API_TIMEOUT_SECONDS = 10


def web_client(
    settings: Settings, token: str | None = None, *, retry_connection_errors: bool = True
) -> AsyncWebClient:
    """A Web API client for ``SLACK_API_URL`` (Slack itself, a proxy, or a fake in tests).

    The outbox's client does not retry by itself: the worker owns retries and backoff.
    """
    base_url = settings.slack_api_url.rstrip("/") + "/"
    if token is None and settings.slack_bot_token is not None:
        token = settings.slack_bot_token.get_secret_value()
    client = AsyncWebClient(token=token, base_url=base_url, timeout=API_TIMEOUT_SECONDS)
    if not retry_connection_errors:
        client.retry_handlers = []
    return client


class SlackAdapter:
    """The running Slack connection: command app, transports, and the outbox sender."""

    name = "slack"

    def __init__(
        self,
        *,
        app: SlackCommandApp,
        sender: SlackSender,
        http: SlackHttpEndpoint | None = None,
        socket_mode: SlackSocketMode | None = None,
    ) -> None:
        self.app = app
        self.sender = sender
        self.http = http
        self.socket_mode = socket_mode

    async def start(self) -> None:
        """Connect Socket Mode if configured (HTTP routes were mounted when built)."""
        if self.socket_mode is not None:
            await self.socket_mode.start()
        modes = [m for m, on in (("Socket Mode", self.socket_mode), ("HTTP", self.http)) if on]
        log.info("Slack adapter running (%s)", " + ".join(modes))

    async def stop(self) -> None:
        """Disconnect, then let running commands finish briefly; safe to call twice."""
        if self.socket_mode is not None:
            await self.socket_mode.stop()
        await self.app.close()


def create_slack_adapter(
    settings: Settings,
    deps: AppDeps,
    clock: Clock,
    *,
    web_app: web.Application | None,
    ping_interval: float = 10.0,
) -> SlackAdapter:
    """Build the adapter; mounts ``POST /slack/events`` on ``web_app`` in HTTP mode.

    Call it before the web application starts (aiohttp freezes its routes then).
    """
    if settings.slack_bot_token is None:
        raise ConfigError("Slack needs SLACK_BOT_TOKEN (xoxb-…)")
    app_token = settings.slack_app_token
    secret = settings.slack_signing_secret
    if app_token is None and secret is None:
        raise ConfigError(
            "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
    client = web_client(settings)
    app = SlackCommandApp(deps=deps, clock=clock, client=client, command=settings.slack_command)
    http = None
    if secret is not None:
        if web_app is None:
            raise ConfigError("Slack HTTP mode needs the bot's web server")
        http = SlackHttpEndpoint(app=app, signing_secret=secret.get_secret_value(), clock=clock)
        http.install(web_app)
    socket_mode = None
    if app_token is not None:
        socket_mode = SlackSocketMode(
            app=app,
            app_token=app_token.get_secret_value(),
            client=client,
            ping_interval=ping_interval,
        )
    sender = SlackSender(web_client(settings, retry_connection_errors=False), clock=clock)
    return SlackAdapter(app=app, sender=sender, http=http, socket_mode=socket_mode)
