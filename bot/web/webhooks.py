"""Push sources: Statuspage webhook notifications, fed straight into detection."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.core.status import Snapshot
from bot.sources.errors import SourceFormatError
from bot.sources.statuspage_webhook import parse_webhook
from bot.web.body import read_capped

log = logging.getLogger(__name__)

MAX_WEBHOOK_BYTES = 1_000_000
Ingest = Callable[[str, Snapshot], Awaitable[object]]


class StatuspageWebhook:
    """``POST /hooks/statuspage/<secret>``: the secret in the path names the source."""

    def __init__(self, *, sources_by_secret: Mapping[str, str], ingest: Ingest) -> None:
        self._sources = dict(sources_by_secret)
        self._ingest = ingest

    def _source_for(self, secret: str) -> str | None:
        found = None
        for known, url in self._sources.items():
            # Compare against every secret, in constant time, so timing reveals nothing.
            if hmac.compare_digest(known.encode(), secret.encode()):
                found = url
        return found

    async def handle(self, request: web.Request) -> web.Response:
        """Accept one notification; 404 unknown secret, 400 malformed, 413 too large."""
        url = self._source_for(request.match_info.get("secret", ""))
        if url is None:
            return web.json_response({"error": "unknown hook"}, status=404)
        body = await read_capped(request, MAX_WEBHOOK_BYTES)
        if body is None:
            return web.json_response({"error": "body too large"}, status=413)
        try:
            fragment = parse_webhook(body)
        except SourceFormatError as exc:
            return web.json_response({"error": f"malformed notification: {exc}"}, status=400)
        await self._ingest(url, fragment)
        return web.json_response({"ok": True})

    def install(self, app: web.Application) -> None:
        """Add the route to an application."""
        app.router.add_post("/hooks/statuspage/{secret}", self.handle)
