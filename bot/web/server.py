"""aiohttp application and its lifecycle."""

from __future__ import annotations

import logging

from aiohttp import web

from bot.core.timeutil import Clock, format_timestamp
from bot.deps import AppDeps
from bot.web import api, badges, pages
from bot.web.endpoint import WEB, WebContext
from bot.web.ratelimit import RateLimiter, parse_trusted_proxies
from bot.web.webhooks import StatuspageWebhook

log = logging.getLogger(__name__)

STARTED_AT = web.AppKey("started_at", str)


def create_web_app(
    *,
    clock: Clock,
    webhook: StatuspageWebhook | None = None,
    deps: AppDeps | None = None,
    rate_limit_per_minute: int = 0,
    trusted_proxies: str | None = None,
) -> web.Application:
    """The web application: ``/healthz``, the dashboard, JSON API and badges when ``deps`` are
    given, and the Statuspage webhook when configured.

    ``rate_limit_per_minute`` (0: off) limits each client address on the public routes;
    ``trusted_proxies`` (comma-separated addresses or networks) are the only peers whose
    ``X-Forwarded-For`` is believed. ValueError when an entry of it is not an address.
    """
    app = web.Application(client_max_size=1024 * 1024)
    app[STARTED_AT] = format_timestamp(clock()) or ""
    app.router.add_get("/healthz", healthz)
    if deps is not None:
        limiter = (
            RateLimiter(per_minute=rate_limit_per_minute, clock=clock)
            if rate_limit_per_minute > 0
            else None
        )
        app[WEB] = WebContext(
            deps=deps,
            clock=clock,
            limiter=limiter,
            trusted_proxies=parse_trusted_proxies(trusted_proxies),
        )
        pages.install(app)
        api.install(app)
        badges.install(app)
    if webhook is not None:
        webhook.install(app)
    return app


async def healthz(request: web.Request) -> web.Response:
    """Process liveness: answers as long as the event loop runs."""
    return web.json_response({"status": "ok", "started_at": request.app[STARTED_AT]})


class WebServer:
    """Runs a web application on a host and port; port 0 picks a free one."""

    def __init__(self, app: web.Application, *, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        self._host, self._port = host, port
        self.bound_port: int | None = None

    async def start(self) -> None:
        """Bind and serve. Raises OSError when the address is taken."""
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        server = site._server  # aiohttp exposes the bound sockets only here
        sockets = getattr(server, "sockets", None) or []
        self.bound_port = sockets[0].getsockname()[1] if sockets else self._port
        log.info("web server on http://%s:%s (dashboard, /healthz)", self._host, self.bound_port)

    async def stop(self) -> None:
        """Stop serving."""
        await self._runner.cleanup()
