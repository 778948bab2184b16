"""HTTP mode: ``POST /slack/events`` on the bot's own aiohttp server.

Slack signs every request: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing
secret. slack_sdk's `SignatureVerifier` (what bolt's verification middleware uses) checks it in
constant time against a 5-minute window measured on our injected clock. A request that fails
gets 401 before bolt — or anything else — sees it; bodies are capped before they are read.
"""

from __future__ import annotations

import logging

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack.app import SlackCommandApp
from bot.core.timeutil import Clock

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 256 * 1024
"""Slack's own payloads (even view submissions) stay far below this."""
_KNOWN_KEYS = frozenset({"command", "type", "ssl_check"})
"""Slash commands carry ``command``; interaction payloads and events ``type``."""


class _VerifierClock(SignatureClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


class SlackHttpEndpoint:
    """Verifies, caps and forwards Slack's HTTP requests (commands, interactivity, events)."""

    def __init__(self, *, app: SlackCommandApp, signing_secret: str, clock: Clock) -> None:
        if not signing_secret.strip():
            raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET")
        self._app = app
        self._verifier = SignatureVerifier(signing_secret, clock=_VerifierClock(clock))

    def routes(self) -> list[web.RouteDef]:
        """The routes to mount on the bot's web application."""
        return [web.post(EVENTS_PATH, self.handle)]

    def install(self, web_app: web.Application) -> None:
        """Mount ``POST /slack/events`` (before the application starts)."""
        web_app.router.add_routes(self.routes())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One Slack request → 401 / 413 / 400, or bolt's answer."""
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return _error(413, "body too large")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, "body too large")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "malformed body")
        if not self._verified(request, text):
            log.info("rejected a Slack request with a bad or stale signature")
            return _error(401, "invalid request")
        try:
            bolt_request = AsyncBoltRequest(
                body=text,
                query=request.query_string,
                headers={k.lower(): v for k, v in request.headers.items()},
            )
        except (ValueError, TypeError):
            return _error(400, "malformed body")
        if not _KNOWN_KEYS.intersection(bolt_request.body):
            return _error(400, "not a Slack command, interaction or event")
        response = await self._app.dispatch(bolt_request)
        return await to_aiohttp_response(response)

    def _verified(self, request: web.Request, raw: str) -> bool:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or len(timestamp) > 12 or not signature:
            return False
        return self._verifier.is_valid(raw, timestamp, signature)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
