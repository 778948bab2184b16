"""Which message a second incident in a channel joins instead of posting a burst."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import POST
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow


async def recent_open_message(
    session: AsyncSession, subscription: SubscriptionRow, alert: AlertRow, *, since: datetime
) -> AlertMessageRow | None:
    """An open incident's message posted in this channel since ``since`` (not ``alert``'s)."""
    query = (
        select(AlertMessageRow)
        .join(AlertRow, col(AlertRow.id) == col(AlertMessageRow.alert_id))
        .join(SubscriptionRow, col(SubscriptionRow.id) == col(AlertMessageRow.subscription_id))
        .join(
            DeliveryRow,
            (col(DeliveryRow.alert_id) == col(AlertMessageRow.alert_id))
            & (col(DeliveryRow.subscription_id) == col(AlertMessageRow.subscription_id))
            & (col(DeliveryRow.action) == POST),
        )
        .where(
            SubscriptionRow.platform == subscription.platform,
            SubscriptionRow.community_id == subscription.community_id,
            SubscriptionRow.channel_id == subscription.channel_id,
            AlertRow.kind == "incident",
            col(AlertRow.resolved_at).is_(None),
            col(AlertRow.id) != alert.id,
            DeliveryRow.status == "done",  # posted, not merely staged
            col(DeliveryRow.done_at) >= since,
        )
        .order_by(col(DeliveryRow.done_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()
