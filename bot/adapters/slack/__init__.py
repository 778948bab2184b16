"""Slack adapter: one ``/outage`` command, Block Kit replies, Socket Mode or HTTP mode.

`create_slack_adapter` builds it from settings. With ``SLACK_APP_TOKEN`` it connects over Socket
Mode; with ``SLACK_SIGNING_SECRET`` it mounts ``POST /slack/events`` on the bot's web app (both
may be on at once). With ``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET`` any workspace can install
it (``/slack/install``), and each is served with its own token. Its `sender` is the outbox's
Slack `PlatformSender`.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.app import Authorize, SlackCommandApp
from bot.adapters.slack.charts import SlackCharts
from bot.adapters.slack.http import EVENTS_PATH, SlackHttpEndpoint
from bot.adapters.slack.identity import AdminLookup
from bot.adapters.slack.manifest import build_manifest, scopes_for
from bot.adapters.slack.oauth import REDIRECT_PATH, SlackOAuth, workspace_authorize
from bot.adapters.slack.sender import SlackSender
from bot.adapters.slack.socket_mode import SlackSocketMode
from bot.adapters.slack.token_auth import TokenAuthorization
from bot.core.timeutil import Clock
from bot.errors import ConfigError
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.store.slack_install_store import (
    SlackInstallationStore,
    SlackOAuthStateStore,
    remove_workspace,
)

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
AUTH_WAIT_SECONDS = 3.0
"""How long start-up waits for auth.test; a slower Slack is asked on in the background."""


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
        auth_wait_seconds: float = 0.0,
    ) -> None:
        self.app = app
        self._auth_wait_seconds = auth_wait_seconds
        self.sender = sender
        self.http = http
        self.socket_mode = socket_mode

    @property
    def ready(self) -> bool:
        """Socket Mode connected, or the HTTP endpoint mounted (Slack calls us then)."""
        if self.socket_mode is not None:
            return self.socket_mode.connected
        return self.http is not None

    async def start(self) -> None:
        """Learn the bot token's workspace, then connect Socket Mode if configured (HTTP
        routes were mounted when built)."""
        await self.app.warm_up(wait_seconds=self._auth_wait_seconds)
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
    auth_wait_seconds: float = AUTH_WAIT_SECONDS,
) -> SlackAdapter:
    """Build the adapter; mounts ``POST /slack/events`` on ``web_app`` in HTTP mode.

    Call it before the web application starts (aiohttp freezes its routes then).
    """
    installs = settings.slack_client_id is not None and settings.slack_client_secret is not None
    if settings.slack_bot_token is None and not installs:
        raise ConfigError(
            "Slack needs SLACK_BOT_TOKEN (xoxb-…) for one workspace, or SLACK_CLIENT_ID and "
            "SLACK_CLIENT_SECRET for installs into any workspace"
        )
    app_token = settings.slack_app_token
    secret = settings.slack_signing_secret
    if app_token is None and secret is None:
        raise ConfigError(
            "Slack needs SLACK_APP_TOKEN (Socket Mode) or SLACK_SIGNING_SECRET (HTTP mode)"
        )
    if app_token is not None and not app_token.get_secret_value().startswith("xapp-"):
        raise ConfigError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
    client = web_client(settings)
    installations: SlackInstallationStore | None = None
    authorize: Authorize | None = None
    token_auth = TokenAuthorization(client) if client.token else None
    if installs:
        installations = SlackInstallationStore(deps.sessions, clock=clock)
        fallback = token_auth.authorize if token_auth is not None else None
        authorize = workspace_authorize(installations, fallback)
        _mount_installs(settings, clock, deps, installations, client, web_app)
    charts = SlackCharts(public_url=settings.public_url)
    if web_app is not None:
        charts.install(web_app)

    async def forget(team_id: str) -> None:
        subscriptions, pending = await remove_workspace(deps.sessions, team_id=team_id)
        log.warning(
            "Slack workspace %s removed: %d subscriptions and %d waiting deliveries dropped",
            team_id,
            subscriptions,
            pending,
        )

    app = SlackCommandApp(
        deps=deps,
        clock=clock,
        client=client,
        command=settings.slack_command,
        admins=AdminLookup(clock=clock, admin_group=settings.slack_admin_group),
        authorize=authorize,
        token_auth=token_auth,
        on_uninstall=forget,
        charts=charts,
    )
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
    sender = SlackSender(
        web_client(settings, retry_connection_errors=False),
        clock=clock,
        installations=installations,
    )
    return SlackAdapter(
        app=app,
        sender=sender,
        http=http,
        socket_mode=socket_mode,
        auth_wait_seconds=auth_wait_seconds,
    )


def _mount_installs(
    settings: Settings,
    clock: Clock,
    deps: AppDeps,
    installations: SlackInstallationStore,
    client: AsyncWebClient,
    web_app: web.Application | None,
) -> None:
    if web_app is None:
        raise ConfigError("Slack installs (SLACK_CLIENT_ID) need the bot's web server")
    if not settings.public_url:
        raise ConfigError(
            "Slack installs need PUBLIC_URL: Slack sends the browser back to "
            f"PUBLIC_URL{REDIRECT_PATH}"
        )
    secret = settings.slack_client_secret
    oauth = SlackOAuth(
        client_id=settings.slack_client_id or "",
        client_secret=secret.get_secret_value() if secret is not None else "",
        redirect_uri=settings.public_url.rstrip("/") + REDIRECT_PATH,
        scopes=scopes_for(settings),
        # oauth.v2.access is authenticated by the client secret, never by a bot token
        client=AsyncWebClient(base_url=client.base_url, timeout=client.timeout),
        installations=installations,
        states=SlackOAuthStateStore(
            deps.sessions,
            secret=secret.get_secret_value() if secret is not None else "",
            clock=clock,
        ),
    )
    oauth.install(web_app)
