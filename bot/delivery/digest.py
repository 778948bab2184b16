"""Which message a second incident in a channel joins instead of posting a burst."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, TypeVar

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql._expression_select_cls import SelectBase

from bot.core.alerts import POST, AlertKind
from bot.core.outbox import DeliveryStatus
from bot.delivery.among import among
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow

ChannelKey = tuple[str, str, str]
"""(platform, community, channel)."""
_Query = TypeVar("_Query", bound=SelectBase[*tuple[Any, ...]])


def _open_posted_since(query: _Query, since: datetime) -> _Query:
    """``query`` over the messages of open incidents posted (not merely staged) since ``since``,
    with the subscription of their channel."""
    return (
        query.join(AlertRow, col(AlertRow.id) == col(AlertMessageRow.alert_id))
        .join(SubscriptionRow, col(SubscriptionRow.id) == col(AlertMessageRow.subscription_id))
        .join(
            DeliveryRow,
            (col(DeliveryRow.alert_id) == col(AlertMessageRow.alert_id))
            & (col(DeliveryRow.subscription_id) == col(AlertMessageRow.subscription_id))
            & (col(DeliveryRow.action) == POST),
        )
        .where(
            AlertRow.kind == AlertKind.INCIDENT,
            col(AlertRow.resolved_at).is_(None),
            DeliveryRow.status == DeliveryStatus.DONE,
            col(DeliveryRow.done_at) >= since,
        )
    )


async def recent_open_message(
    session: AsyncSession, subscription: SubscriptionRow, alert: AlertRow, *, since: datetime
) -> AlertMessageRow | None:
    """An open incident's message posted in this channel since ``since`` (not ``alert``'s)."""
    query = (
        _open_posted_since(select(AlertMessageRow), since)
        .where(
            SubscriptionRow.platform == subscription.platform,
            SubscriptionRow.community_id == subscription.community_id,
            SubscriptionRow.channel_id == subscription.channel_id,
            col(AlertRow.id) != alert.id,
        )
        .order_by(col(DeliveryRow.done_at).desc())
        .limit(1)
    )
    return (await session.exec(query)).first()


async def other_open_incidents(session: AsyncSession, alert_ids: Collection[int]) -> bool:
    """Whether any incident besides these alerts is still open: when none is, a round posting
    these alerts has no message to join, and `open_alerts_posted_in` need not look (open
    incidents are few; the messages of a large fan-out are many)."""
    query = (
        select(AlertRow.id)
        .where(
            AlertRow.kind == AlertKind.INCIDENT,
            col(AlertRow.resolved_at).is_(None),
            col(AlertRow.id).not_in(list(alert_ids)),
        )
        .limit(1)
    )
    return (await session.exec(query)).first() is not None


async def open_alerts_posted_in(
    session: AsyncSession, channels: Collection[ChannelKey], *, since: datetime
) -> dict[ChannelKey, set[int]]:
    """The open incidents (alert ids) with a message posted since ``since`` in each of these
    channels: what `recent_open_message` looks for, for a whole round's channels at once."""
    if not channels:
        return {}
    query = _open_posted_since(
        select(
            SubscriptionRow.platform,
            SubscriptionRow.community_id,
            SubscriptionRow.channel_id,
            AlertMessageRow.alert_id,
        ),
        since,
    ).where(
        # All three, which lead the subscriptions' unique index: PostgreSQL then starts from these
        # channels. (SQLite, without statistics, still starts from every done delivery.)
        among(col(SubscriptionRow.platform), {c[0] for c in channels}),
        among(col(SubscriptionRow.community_id), {c[1] for c in channels}),
        among(col(SubscriptionRow.channel_id), {c[2] for c in channels}),
    )
    found: dict[ChannelKey, set[int]] = {}
    for platform, community, channel, alert_id in (await session.exec(query)).all():
        key = (platform, community, channel)
        if key in channels:
            found.setdefault(key, set()).add(alert_id)
    return found
