"""What command handlers may use: built once by the composition root, passed in everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import CommandRegistry
from bot.sources.catalog import Catalog

if TYPE_CHECKING:
    from bot.delivery.webhook_address import WebhookPolicy
    from bot.services.custom_services import CustomServices


@dataclass(frozen=True, slots=True)
class AppDeps:
    """Shared, long-lived dependencies of the cogs."""

    catalog: Catalog
    sessions: async_sessionmaker[AsyncSession]
    registry: CommandRegistry
    custom_services: CustomServices | None = None
    webhook_policy: WebhookPolicy | None = None
    """Where outgoing webhooks may point (None: public addresses, the system resolver)."""
    cache: dict[str, object] = field(default_factory=dict)
    """Values that never change once read (the user-hash salt), kept per process."""
