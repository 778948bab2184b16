"""Reminders under alerts that stay open for hours: staged by a recurring job of their own."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.jobs import Job
from bot.core.timeutil import Clock
from bot.store import alert_store
from bot.store.availability import DatabaseOutageLog

log = logging.getLogger(__name__)

CHECK_EVERY = timedelta(minutes=5)
"""How often open alerts are looked at; a reminder is due every ``REMINDER_HOURS``."""


class Reminders:
    """Stages a reminder for each alert left open ``every`` since its last word."""

    def __init__(
        self, *, sessions: async_sessionmaker[AsyncSession], clock: Clock, every: timedelta
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._every = every
        self._database = DatabaseOutageLog(log, "reminders", clock=clock)

    async def stage(self) -> None:
        """One pass; a database outage is logged once and retried at the next pass."""
        with self._database.watching("staging reminders failed"):
            async with self._sessions() as session:
                await alert_store.stage_reminders(
                    session=session, now=self._clock(), every=self._every
                )
                await session.commit()

    def jobs(self) -> list[Job]:
        """Nothing when reminders are off (``every`` of zero)."""
        if self._every <= timedelta(0):
            return []
        return [Job("reminders", self.stage, CHECK_EVERY)]
