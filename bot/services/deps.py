"""What command handlers may use: built once by the composition root, passed in everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.charts.service_chart import ReportActivity, ReportCharts
from bot.core.commands import CommandRegistry
from bot.core.observers import Observers
from bot.services.usual_levels import UsualLevels
from bot.sources.catalog import Catalog
from bot.store.report_ledger import ReportLedger

if TYPE_CHECKING:
    from bot.net.webhook_address import WebhookPolicy
    from bot.services.custom_services import CustomServices


@dataclass(slots=True)
class ReportState:
    """What /report keeps per process, each part filled in on first use."""

    ledger: ReportLedger | None = None
    """Recent reports in memory, primed from the database (bot/store/report_ledger.py)."""
    salt: bytes | None = None
    """The user-hash salt: it never changes once created, so it is read once."""
    counted: Observers[str] = field(default_factory=Observers)
    """Told the service id of each counted report; the crowd watch subscribes when it is built,
    to look at that service now instead of at its next tick."""


@dataclass(frozen=True, slots=True)
class AppDeps:
    """Shared, long-lived dependencies of the cogs."""

    catalog: Catalog
    sessions: async_sessionmaker[AsyncSession]
    registry: CommandRegistry
    custom_services: CustomServices | None = None
    webhook_policy: WebhookPolicy | None = None
    """Where outgoing webhooks may point (None: public addresses, the system resolver)."""
    reports: ReportState = field(default_factory=ReportState)
    report_charts: ReportCharts = field(default_factory=ReportCharts)
    """The 24 h report series and charts, built at most once per service and minute."""
    usual_levels: UsualLevels = field(default_factory=UsualLevels)
    """Each service's usual report rate, recounted every few minutes."""

    async def report_activity(self, service_id: str, *, now: datetime) -> ReportActivity:
        """The last 24 h of reports of a service, with their chart when there is one."""
        return await self.report_charts.activity(self.sessions, service_id, now=now)
