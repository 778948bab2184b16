"""Charts on Slack: an image block the bot serves itself, or a file upload.

Slack's image block needs a URL Slack can fetch. With ``PUBLIC_URL`` set, the PNG is kept in a
small in-memory cache and served at ``GET /charts/<sha256>.png`` (content-addressed, so any
process that rendered the same chart serves the same bytes, and caching forever is safe).
Without a public URL the PNG goes up with ``files_upload_v2`` (getUploadURLExternal, the upload,
completeUploadExternal) into the channel the command came from.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import OrderedDict

import aiohttp
from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

CHARTS_PATH = "/charts/{name}"
MAX_CHARTS = 64
MAX_CHART_BYTES = 2 * 1024 * 1024
_NAME = re.compile(r"^([0-9a-f]{64})\.png$")


class ChartCache:
    """The newest charts, by SHA-256, bounded in count and in total bytes."""

    def __init__(self, *, max_items: int = MAX_CHARTS, max_bytes: int = 16 * MAX_CHART_BYTES):
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._bytes = 0

    def put(self, png: bytes) -> str:
        """Keep ``png``; returns its file name (``<sha256>.png``)."""
        digest = hashlib.sha256(png).hexdigest()
        if digest in self._items:
            self._items.move_to_end(digest)
        else:
            self._items[digest] = png
            self._bytes += len(png)
        while len(self._items) > self._max_items or self._bytes > self._max_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= len(dropped)
        return f"{digest}.png"

    def get(self, name: str) -> bytes | None:
        match = _NAME.match(name)
        return self._items.get(match.group(1)) if match else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /charts/<sha256>.png``."""
        png = self.get(request.match_info["name"])
        if png is None:
            return web.Response(status=404, text="no such chart (charts are kept for a while)")
        return web.Response(
            body=png,
            content_type="image/png",
            headers={"Cache-Control": "public, max-age=86400, immutable"},
        )


class SlackCharts:
    """Where a reply's chart goes: a URL for an image block, or an upload after the answer."""

    def __init__(self, *, public_url: str | None, cache: ChartCache | None = None) -> None:
        self._base = public_url.rstrip("/") if public_url else None
        self._cache = cache or ChartCache()

    def install(self, web_app: web.Application) -> None:
        """Serve the cache (only useful with a public URL; harmless otherwise)."""
        web_app.router.add_get(CHARTS_PATH, self._cache.handle)

    def image_url(self, png: bytes | None) -> str | None:
        """The public URL of ``png``, or None when it must be uploaded instead."""
        if png is None or self._base is None or len(png) > MAX_CHART_BYTES:
            return None
        return f"{self._base}/charts/{self._cache.put(png)}"

    async def upload(
        self, client: AsyncWebClient, *, png: bytes, channel_id: str | None, title: str
    ) -> bool:
        """Upload ``png`` into the channel; False (logged) when Slack refuses or is away."""
        if not channel_id or len(png) > MAX_CHART_BYTES:
            return False
        try:
            await client.files_upload_v2(
                channel=channel_id, file=png, filename="chart.png", title=title[:250] or "chart"
            )
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not upload a chart to Slack: %s", _error(exc))
            return False
        return True


def _error(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        return str(data.get("error")) if isinstance(data, dict) else "Slack API error"
    return type(exc).__name__
