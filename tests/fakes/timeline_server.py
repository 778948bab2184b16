"""Status pages on loopback that replay real incidents at whatever moment their client says it is.

A bot process on a virtual clock cannot share a clock with the test, so it tells this server
the time (``PUT /_clock`` with an ISO timestamp) before it polls; each page then serves the
summary.json and incidents.json its timeline had at that moment (`bot.sources.timeline`).
Pages live at ``/<name>/api/v2/summary.json``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Self

from aiohttp import web

from bot.sources.timeline import Timeline, incidents_at, summary_at


def shifted(timeline: Timeline, delta: timedelta) -> Timeline:
    """The same incident, told ``delta`` later."""
    updates = tuple(dataclasses.replace(u, posted_at=u.posted_at + delta) for u in timeline.updates)
    return dataclasses.replace(timeline, updates=updates)


class TimelineServer:
    """Use as ``async with TimelineServer({"alpha": timeline}, start) as pages: ...``."""

    def __init__(self, pages: Mapping[str, Timeline], now: datetime) -> None:
        self.pages = dict(pages)
        self.now = now
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_put("/_clock", self._clock)
        app.router.add_get("/{page}/api/v2/{part}", self._page)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def summary_url(self, page: str) -> str:
        return self.url(f"/{page}/api/v2/summary.json")

    @property
    def clock_url(self) -> str:
        return self.url("/_clock")

    async def _clock(self, request: web.Request) -> web.Response:
        self.now = datetime.fromisoformat(await request.text())
        return web.Response(status=204)

    async def _page(self, request: web.Request) -> web.Response:
        timeline = self.pages.get(request.match_info["page"])
        part = request.match_info["part"]
        if timeline is None or part not in ("summary.json", "incidents.json"):
            raise web.HTTPNotFound()
        build = summary_at if part == "summary.json" else incidents_at
        return web.json_response(build(timeline, self.now))
