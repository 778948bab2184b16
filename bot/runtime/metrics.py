"""Prometheus metrics: one registry per app, fed by callbacks at the poller, worker and dispatch.

A registry of our own (never prometheus-client's global one) keeps tests independent and lets
two apps live in one process. Every recorder is a plain method, so the instrumented modules
take a callback and never import prometheus-client.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import CommandOutcome
from bot.core.events import DetectionEvent
from bot.core.outbox import UNFINISHED
from bot.store.models import DeliveryRow

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Status pages answer in tens of ms to seconds; commands should stay well under the 3 s limit.
_POLL_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COMMAND_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 3.0)


class Metrics:
    """Every metric outagebot exports, on a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.polls = Counter(
            "outagebot_polls",
            "Status source polls by kind and result.",
            ["kind", "result"],
            registry=r,
        )
        self.poll_seconds = Histogram(
            "outagebot_poll_duration_seconds",
            "Time to poll one status source (fetch, store, detect).",
            ["kind"],
            buckets=_POLL_BUCKETS,
            registry=r,
        )
        self.detection_events = Counter(
            "outagebot_detection_events", "Detection events by kind.", ["kind"], registry=r
        )
        self.deliveries = Counter(
            "outagebot_deliveries",
            "Outbox delivery attempts by platform and result (done, retry, failed).",
            ["platform", "result"],
            registry=r,
        )
        self.outbox_depth = Gauge(
            "outagebot_outbox_depth",
            "Deliveries waiting in the outbox (pending or sending), by platform.",
            ["platform"],
            registry=r,
        )
        self.command_seconds = Histogram(
            "outagebot_command_duration_seconds",
            "Time to answer a command, by command and outcome.",
            ["command", "outcome"],
            buckets=_COMMAND_BUCKETS,
            registry=r,
        )
        self.reports = Counter(
            "outagebot_reports_ingested", "Crowd reports (/report) accepted.", registry=r
        )
        # Per (kind, result): the labelled series a poll moves. Looked up once, not per poll:
        # `labels()` costs 2-3 µs, and thousands of pages end a poll every 30 s each.
        self._poll_recorders: dict[tuple[str, str], tuple[Counter, Histogram | None]] = {}

    def poll_done(self, kind: str, result: str, seconds: float) -> None:
        """A poll of one source finished (result: ok, unchanged, failed, skipped, error)."""
        recorders = self._poll_recorders.get((kind, result))
        if recorders is None:
            timer = None if result == "skipped" else self.poll_seconds.labels(kind=kind)
            recorders = self.polls.labels(kind=kind, result=result), timer
            self._poll_recorders[kind, result] = recorders
        count, timer = recorders
        count.inc()
        if timer is not None:
            timer.observe(seconds)

    def events_detected(self, events: Sequence[DetectionEvent]) -> None:
        """Detection events were committed."""
        for event in events:
            self.detection_events.labels(kind=event.kind.value).inc()

    def delivery_done(self, platform: str, result: str) -> None:
        """The outbox worker finished one attempt at one delivery."""
        self.deliveries.labels(platform=platform, result=result).inc()

    def command_done(self, command: str, outcome: CommandOutcome, seconds: float) -> None:
        """A command was answered; a counted /report also counts as an ingested report."""
        self.command_seconds.labels(command=command, outcome=outcome.value).observe(seconds)
        if command == "report" and outcome is CommandOutcome.OK:
            self.reports.inc()

    async def refresh_outbox_depth(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Count waiting deliveries now (at scrape time: the count is one indexed query)."""
        async with sessions() as session:
            rows = (
                await session.exec(
                    select(DeliveryRow.platform, func.count())
                    .where(col(DeliveryRow.status).in_(UNFINISHED))
                    .group_by(DeliveryRow.platform)
                )
            ).all()
        self.outbox_depth.clear()
        for platform, count in rows:
            self.outbox_depth.labels(platform=platform).set(count)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)
