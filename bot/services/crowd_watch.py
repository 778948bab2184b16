"""Feed new reports to the crowd detector and keep early warnings current.

Every service once a minute (levels also fall with time), and one service a few seconds after a
counted /report for it (`nudge`): a surge is seen when it comes, not at the next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import crowd
from bot.core.crowd_codec import decode_crowd_memory, encode_crowd_memory
from bot.core.early_warning import CrowdReading
from bot.core.jobs import Job
from bot.core.service_state import ServiceState
from bot.core.timeutil import Clock
from bot.services.facts import probe_failing, probe_urls
from bot.sources.catalog import Catalog
from bot.store import crowd_store, detection_store, warning_store
from bot.store.availability import DatabaseOutageLog
from bot.store.crowd_models import CrowdMemoryRow
from bot.store.models import ServiceRow

log = logging.getLogger(__name__)

LEARN_FROM = timedelta(days=7)
NUDGE_DELAY = 5.0
"""Seconds from a report to its service's evaluation; the reports in between share it."""


class CrowdWatch:
    """Runs the pure crowd detector over stored reports, one transaction per service."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        clock: Clock,
        config: crowd.CrowdConfig | None = None,
        on_staged: Callable[[], None] = lambda: None,
        nudge_delay: float = NUDGE_DELAY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._sessions = sessions
        self._catalog = catalog
        self._clock = clock
        self._config = config or crowd.CrowdConfig()
        self._on_staged = on_staged
        self._nudge_delay = nudge_delay
        self._sleep = sleep
        self._nudged: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        # Shared by the tick and the nudges: one line per database outage, not one per service.
        self._database = DatabaseOutageLog(log, "crowd watch", clock=clock)

    async def tick(self) -> int:
        """Evaluate every service; returns how many deliveries were staged."""
        staged = 0
        for service in list(self._catalog):
            with self._database.watching("crowd evaluation of %s failed", service.id):
                staged += await self._evaluate(service.id, probe_urls(service))
        if staged:
            self._on_staged()
        return staged

    def jobs(self) -> list[Job]:
        """Every service once a minute: levels also fall with time, with no new report."""
        return [Job("crowd", self.tick, timedelta(minutes=1))]

    def nudge(self, service_id: str) -> None:
        """A counted report came in: evaluate that service in `nudge_delay` seconds."""
        if service_id in self._nudged or self._catalog.get(service_id) is None:
            return
        self._nudged.add(service_id)
        task = asyncio.get_running_loop().create_task(self._after_nudge(service_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_nudge(self, service_id: str) -> None:
        try:
            await self._sleep(self._nudge_delay)
        finally:
            self._nudged.discard(service_id)  # reports from now on ask for another look
        service = self._catalog.get(service_id)
        if service is None:
            return
        staged = 0
        with self._database.watching("crowd evaluation of %s failed", service_id):
            staged = await self._evaluate(service_id, probe_urls(service))
        if staged:
            self._on_staged()

    async def _evaluate(self, service_id: str, probes: list[str]) -> int:
        # The tick and a nudge must not both feed the same new reports to one memory.
        async with self._locks.setdefault(service_id, asyncio.Lock()):
            return await self._evaluate_now(service_id, probes)

    async def _evaluate_now(self, service_id: str, probes: list[str]) -> int:
        now = self._clock()
        async with self._sessions() as session:
            row = await session.get(CrowdMemoryRow, service_id)
            if row is None:
                memory = await self._first_memory(session, service_id, now)
                row = CrowdMemoryRow(service_id=service_id, memory="", updated_at=now)
            else:
                memory = decode_crowd_memory(row.memory)
            fresh = await crowd_store.reports_after(
                session=session,
                service_id=service_id,
                after_id=row.last_report_id,
                since=now - self._config.horizon,
            )
            reports = [
                crowd.Report(at=at, reporter=who, community=where) for _, at, who, where in fresh
            ]
            if fresh:
                row.last_report_id = fresh[-1][0]
            memory = crowd.observe(memory, reports, config=self._config)
            probe = crowd.ProbeSignal(failing=await probe_failing(session, service_id, probes))
            memory, assessment = crowd.evaluate(memory, now=now, config=self._config, probe=probe)
            row.memory, row.updated_at = encode_crowd_memory(memory), now
            session.add(row)
            staged = await warning_store.apply_reading(
                session=session,
                service_id=service_id,
                reading=_reading(assessment.facts),
                now=now,
                official_open=await self._official_trouble(session, service_id)
                or await self._explained(session, service_id, assessment.facts),
            )
            await session.commit()
        return staged

    async def _first_memory(
        self, session: AsyncSession, service_id: str, now: datetime
    ) -> crowd.CrowdMemory:
        """A new detector learns the past week of stored reports (quiet hours included)."""
        hours = await crowd_store.hourly_counts(
            session=session, service_id=service_id, since=now - LEARN_FROM, until=now
        )
        return crowd.learn_history(crowd.CrowdMemory(), hours, config=self._config)

    async def _explained(
        self, session: AsyncSession, service_id: str, facts: crowd.CrowdFacts
    ) -> bool:
        """Whether an official incident ended after this surge's first report.

        Reports made during an incident are its echo: once it resolves, the crowd level takes a
        while to fall, and must not reopen a warning about what the page already told. (An
        incident still open counts through the service's state; one stored open long after its
        page forgot it must not silence warnings for good.)
        """
        if facts.level is crowd.CrowdLevel.NONE or facts.first_report_at is None:
            return False
        incidents = await detection_store.incident_history(
            session=session, service_id=service_id, since=facts.first_report_at
        )
        return any(incident.resolved_at is not None for incident in incidents)

    async def _official_trouble(self, session: AsyncSession, service_id: str) -> bool:
        row = await session.get(ServiceRow, service_id)
        return row is not None and ServiceState(row.state).in_trouble


def _reading(facts: crowd.CrowdFacts) -> CrowdReading:
    return CrowdReading(
        level=facts.level,
        reports=facts.reports,
        reporters=facts.reporters,
        communities=facts.communities,
        ratio=facts.ratio,
        first_report_at=facts.first_report_at,
        probe_failing=facts.probe_failing,
        window_minutes=facts.window_minutes,
    )
