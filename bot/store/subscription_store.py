"""Subscriptions, always scoped to one community on one platform (never another's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.mention import Mention
from bot.store.models import SubscriptionRow


@dataclass(frozen=True, slots=True)
class Scope:
    """The community a command comes from: every query is confined to it."""

    platform: str
    community_id: str


async def upsert_subscription(
    *,
    session: AsyncSession,
    scope: Scope,
    channel_id: str,
    service_id: str,
    components: Sequence[str],
    min_severity: str,
    mention_role: Mention | None,
    early_warnings: bool,
    maintenance: bool,
    now: datetime,
    alternatives: bool = True,
) -> tuple[SubscriptionRow, bool]:
    """Create or update a channel's subscription to a service; True when it is new.

    ``mention_role``: who new alerts ping (a role, a user group, @here), stored canonically."""
    row = (
        await session.exec(
            select(SubscriptionRow).where(
                SubscriptionRow.platform == scope.platform,
                SubscriptionRow.community_id == scope.community_id,
                SubscriptionRow.channel_id == channel_id,
                SubscriptionRow.service_id == service_id,
            )
        )
    ).first()
    created = row is None
    if row is None:
        row = SubscriptionRow(
            platform=scope.platform,
            community_id=scope.community_id,
            channel_id=channel_id,
            service_id=service_id,
            created_at=now,
        )
    row.components = "\n".join(components)
    row.min_severity = min_severity
    row.mention_role = mention_role.stored() if mention_role is not None else None
    row.early_warnings, row.maintenance = early_warnings, maintenance
    row.alternatives = alternatives
    row.enabled, row.disabled_reason = True, None
    session.add(row)
    await session.flush()
    return row, created


async def remove_subscription(
    *, session: AsyncSession, scope: Scope, channel_id: str, service_id: str
) -> bool:
    """Delete a channel's subscription; False when there was none (in this community)."""
    row = (
        await session.exec(
            select(SubscriptionRow).where(
                SubscriptionRow.platform == scope.platform,
                SubscriptionRow.community_id == scope.community_id,
                SubscriptionRow.channel_id == channel_id,
                SubscriptionRow.service_id == service_id,
            )
        )
    ).first()
    if row is None:
        return False
    await session.delete(row)
    return True


async def list_subscriptions(*, session: AsyncSession, scope: Scope) -> list[SubscriptionRow]:
    """Every subscription of one community, by channel then service."""
    rows = await session.exec(
        select(SubscriptionRow)
        .where(
            SubscriptionRow.platform == scope.platform,
            SubscriptionRow.community_id == scope.community_id,
        )
        .order_by(col(SubscriptionRow.channel_id), col(SubscriptionRow.service_id))
    )
    return list(rows.all())


async def disable_subscription(*, session: AsyncSession, subscription_id: int, reason: str) -> None:
    """Stop delivering to a channel we cannot post in; /subscriptions shows the reason."""
    row = await session.get(SubscriptionRow, subscription_id)
    if row is not None:
        row.enabled, row.disabled_reason = False, reason[:300]
        session.add(row)
