"""aiohttp application and its lifecycle."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from bot.core.timeutil import Clock, format_timestamp
from bot.services.deps import AppDeps
from bot.settings import parse_trusted_proxies
from bot.web import api, badges, pages
from bot.web.endpoint import WEB, WebContext
from bot.web.ratelimit import RateLimiter
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


HEADER_TIMEOUT_SECONDS = 10.0
"""A connection whose request headers are not complete by then is closed (slowloris)."""
KEEPALIVE_SECONDS = 75.0
"""An idle keep-alive connection is closed after this; aiohttp's own default is an hour. aiohttp
also closes, at this point, a connection that started its next request and did not finish the
headers: the deadline for every request after the first."""
_END_OF_HEADERS = b"\r\n\r\n"


class WebServer:
    """Runs a web application on a host and port; port 0 picks a free one."""

    def __init__(
        self,
        app: web.Application,
        *,
        host: str,
        port: int,
        header_timeout: float = HEADER_TIMEOUT_SECONDS,
        keepalive_timeout: float = KEEPALIVE_SECONDS,
    ) -> None:
        self._runner = web.AppRunner(app, access_log=None, keepalive_timeout=keepalive_timeout)
        self._host, self._port = host, port
        self._header_timeout = header_timeout
        self.bound_port: int | None = None

    async def start(self) -> None:
        """Bind and serve. Raises OSError when the address is taken."""
        await self._runner.setup()
        site = _DeadlineSite(self._runner, self._host, self._port, self._header_timeout)
        try:
            self.bound_port = await site.bind()
        except OSError:
            await self._runner.cleanup()
            raise
        log.info("web server on http://%s:%s (dashboard, /healthz)", self._host, self.bound_port)

    async def stop(self) -> None:
        """Stop serving."""
        await self._runner.cleanup()


class _DeadlineSite(web.BaseSite):
    """A TCP site whose connections must send their first request's headers in time.

    aiohttp reads headers for as long as the client trickles them in, so a few hundred
    half-open requests would hold the server's connections (slowloris). Each connection's
    protocol is wrapped in a `_HeaderDeadline`; the runner still owns and shuts down the real
    aiohttp protocols.
    """

    def __init__(self, runner: web.AppRunner, host: str, port: int, header_timeout: float) -> None:
        super().__init__(runner)
        self._host, self._port = host, port
        self._header_timeout = header_timeout

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await self.bind()

    async def bind(self) -> int:
        """Start listening; the bound port."""
        await super().start()
        aiohttp_protocol = self._runner.server
        assert aiohttp_protocol is not None  # set by runner.setup(), checked by BaseSite
        loop = asyncio.get_running_loop()
        timeout = self._header_timeout
        self._server = await loop.create_server(
            lambda: _HeaderDeadline(aiohttp_protocol(), timeout, loop), self._host, self._port
        )
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else self._port


class _HeaderDeadline(asyncio.Protocol):
    """Passes everything to aiohttp's protocol; closes the connection when the first request's
    headers (up to the blank line) have not arrived within ``timeout`` seconds of connecting."""

    def __init__(
        self, inner: asyncio.Protocol, timeout: float, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._loop = loop
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        self._timer = self._loop.call_later(self._timeout, self._expire)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            # Only the last three bytes of earlier data can start the blank line.
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _expire(self) -> None:
        self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            log.debug("closed a connection that sent no complete request in %ss", self._timeout)
            self._transport.close()
