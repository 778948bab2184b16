"""Pruning old rows: crowd reports and finished deliveries. Incident history is never pruned.

Deletes run in small batches, one transaction each, so a large backlog never holds locks for
long or blocks the poller's writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from bot.core.jobs import Job
from bot.core.outbox import DeliveryStatus
from bot.core.timeutil import Clock
from bot.store.crowd_models import ReportRow
from bot.store.models import AlertRow, DeliveryRow

log = logging.getLogger(__name__)

REPORT_FLOOR_DAYS = 8
"""Reports younger than this are always kept: a new crowd detector learns its baseline from the
past 7 days of reports, and /report compares the last window with a 7-day baseline."""


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long rows are kept."""

    report_days: float = 30.0
    delivery_days: float = 14.0
    batch: int = 1000


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows one run deleted."""

    reports: int
    deliveries: int


async def prune(
    *, sessions: async_sessionmaker[AsyncSession], policy: RetentionPolicy, now: datetime
) -> Pruned:
    """Delete reports and finished deliveries older than the policy allows."""
    report_cutoff = now - timedelta(days=max(policy.report_days, REPORT_FLOOR_DAYS))
    reports = await _in_batches(
        sessions,
        select(ReportRow.id).where(col(ReportRow.at) < report_cutoff),
        ReportRow,
        policy.batch,
    )
    delivery_cutoff = now - timedelta(days=policy.delivery_days)
    # Only deliveries of alerts long resolved: an open alert's post tells the next update to
    # edit that message rather than post a new one, and must stay.
    settled = select(AlertRow.id).where(
        col(AlertRow.resolved_at).is_not(None), col(AlertRow.resolved_at) < delivery_cutoff
    )
    deliveries = await _in_batches(
        sessions,
        select(DeliveryRow.id).where(
            col(DeliveryRow.status).in_((DeliveryStatus.DONE, DeliveryStatus.FAILED)),
            col(DeliveryRow.done_at) < delivery_cutoff,
            col(DeliveryRow.alert_id).in_(settled),
        ),
        DeliveryRow,
        policy.batch,
    )
    return Pruned(reports=reports, deliveries=deliveries)


async def _in_batches(
    sessions: async_sessionmaker[AsyncSession],
    candidates: SelectOfScalar[int] | SelectOfScalar[None],
    table: type[ReportRow] | type[DeliveryRow],
    batch: int,
) -> int:
    total = 0
    while True:
        async with sessions() as session:
            ids = list((await session.exec(candidates.limit(batch))).all())
            if ids:
                await session.exec(delete(table).where(col(table.id).in_(ids)))
                await session.commit()
        total += len(ids)
        if len(ids) < batch:
            return total


class RetentionJob:
    """The scheduled job (leader only): prune, and say what went."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], policy: RetentionPolicy, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._policy = policy
        self._clock = clock

    def jobs(self, *, every: timedelta = timedelta(hours=1)) -> list[Job]:
        """Pruning every ``every``."""
        return [Job("retention", self.run, every)]

    async def run(self) -> Pruned | None:
        """One pass; a failure is logged and retried at the next run."""
        try:
            pruned = await prune(sessions=self._sessions, policy=self._policy, now=self._clock())
        except Exception:
            log.exception("retention: pruning failed; trying again at the next run")
            return None
        if pruned.reports or pruned.deliveries:
            log.info(
                "retention: pruned %s reports and %s finished deliveries",
                pruned.reports,
                pruned.deliveries,
            )
        return pruned
