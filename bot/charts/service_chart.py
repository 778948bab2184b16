"""The 24 h report chart of a service, cached per minute: what `/status` and the dashboard call.

A chart is built at most once per service and minute, however many people ask at once: later
callers of the same minute share the one query and render (or its result). Drawing runs in a
worker thread, so the event loop keeps serving while matplotlib works.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.model import Chart, ReportSeries
from bot.charts.optional_render import OptionalChartRenderer
from bot.charts.series import load_report_series

log = logging.getLogger(__name__)

MAX_SERVICES = 256

Renderer = Callable[[ReportSeries], Chart | None]
"""Draws a series; None when it cannot (matplotlib not installed)."""


@dataclass(frozen=True, slots=True)
class ReportActivity:
    """A service's recent reports, and their chart unless there is nothing to draw."""

    series: ReportSeries
    chart: Chart | None
    """None when the span was quiet (no report, no incident) or drawing failed (logged)."""


class ReportCharts:
    """Per-service report series and charts, kept for the minute they were built in.

    Bounded: the services asked about least recently are dropped beyond ``max_services``.
    """

    def __init__(self, *, render: Renderer | None = None, max_services: int = MAX_SERVICES) -> None:
        if max_services < 1:
            raise ValueError("max_services must be at least 1")
        self._render = render or OptionalChartRenderer()
        self._max = max_services
        self._done: OrderedDict[str, tuple[datetime, ReportActivity]] = OrderedDict()
        self._building: dict[tuple[str, datetime], asyncio.Task[ReportActivity]] = {}

    def __len__(self) -> int:
        return len(self._done)

    async def activity(
        self, sessions: async_sessionmaker[AsyncSession], service_id: str, *, now: datetime
    ) -> ReportActivity:
        """The service's activity as of this minute; built now if this minute has none yet."""
        minute = now.replace(second=0, microsecond=0)
        cached = self._done.get(service_id)
        if cached is not None and cached[0] == minute:
            self._done.move_to_end(service_id)
            return cached[1]
        key = (service_id, minute)
        task = self._building.get(key)
        if task is None:
            task = asyncio.create_task(self._build(sessions, service_id, now))
            self._building[key] = task
            task.add_done_callback(partial(self._finish, key))
        # Shielded: a caller that gives up (a cancelled interaction) does not cancel the build
        # that others of the same minute are waiting for.
        return await asyncio.shield(task)

    async def _build(
        self, sessions: async_sessionmaker[AsyncSession], service_id: str, now: datetime
    ) -> ReportActivity:
        async with sessions() as session:
            series = await load_report_series(session=session, service_id=service_id, now=now)
        if series.quiet:
            return ReportActivity(series=series, chart=None)
        try:
            chart: Chart | None = await asyncio.to_thread(self._render, series)
        except Exception:
            log.exception("drawing the report chart of %s failed; answering without it", service_id)
            chart = None
        return ReportActivity(series=series, chart=chart)

    def _finish(self, key: tuple[str, datetime], task: asyncio.Task[ReportActivity]) -> None:
        self._building.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return  # not cached: the next caller tries again
        service_id, minute = key
        current = self._done.get(service_id)
        if current is None or current[0] <= minute:
            self._done[service_id] = (minute, task.result())
            self._done.move_to_end(service_id)
            while len(self._done) > self._max:
                self._done.popitem(last=False)
