"""Outgoing webhook targets and their subscriptions. Writers stage changes; the caller commits.

A target follows a service through a `SubscriptionRow` on the platform ``webhook``, in the
community ``<owner platform>:<owner community>``, whose channel is the target's id: the outbox
then fans alerts out to it with no special case.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.models import SubscriptionRow
from bot.store.subscription_store import Scope, upsert_subscription
from bot.store.webhook_models import WEBHOOK_PLATFORM, WebhookTargetRow


def target_scope(target: WebhookTargetRow) -> Scope:
    """The subscription scope of a target's own subscriptions."""
    return Scope(WEBHOOK_PLATFORM, f"{target.owner_platform}:{target.owner_community}")


async def find_target(
    *, session: AsyncSession, owner_platform: str, owner_community: str, url: str
) -> WebhookTargetRow | None:
    """A community's target for this exact URL."""
    return (
        await session.exec(
            select(WebhookTargetRow).where(
                WebhookTargetRow.owner_platform == owner_platform,
                WebhookTargetRow.owner_community == owner_community,
                WebhookTargetRow.url == url,
            )
        )
    ).first()


async def add_target(
    *,
    session: AsyncSession,
    owner_platform: str,
    owner_community: str,
    url: str,
    secret: str,
    notice_channel_id: str | None,
    now: datetime,
) -> tuple[WebhookTargetRow, bool]:
    """The community's target for ``url`` (created with ``secret`` when new; True then).

    Adding an existing target again turns it back on: the admin has fixed the receiver.
    """
    row = await find_target(
        session=session, owner_platform=owner_platform, owner_community=owner_community, url=url
    )
    created = row is None
    if row is None:
        row = WebhookTargetRow(
            owner_platform=owner_platform,
            owner_community=owner_community,
            url=url,
            secret=secret,
            created_at=now,
        )
    if notice_channel_id is not None:
        row.notice_channel_id = notice_channel_id
    if not row.enabled:
        row.enabled, row.disabled_reason, row.consecutive_failures = True, None, 0
        await _set_subscriptions_enabled(session, row, enabled=True, reason=None)
    session.add(row)
    await session.flush()
    return row, created


async def subscribe_target(
    *,
    session: AsyncSession,
    target: WebhookTargetRow,
    service_id: str,
    components: Sequence[str],
    min_severity: str,
    maintenance: bool,
    now: datetime,
    early_warnings: bool = False,
) -> SubscriptionRow:
    """Make the target receive a service's alerts (updating the filter when it already does)."""
    row, _ = await upsert_subscription(
        session=session,
        scope=target_scope(target),
        channel_id=str(target.id),
        service_id=service_id,
        components=components,
        min_severity=min_severity,
        mention_role=None,
        early_warnings=early_warnings,
        maintenance=maintenance,
        now=now,
        alternatives=False,
    )
    return row


async def target_services(*, session: AsyncSession, target: WebhookTargetRow) -> list[str]:
    """The service ids a target follows."""
    scope = target_scope(target)
    rows = await session.exec(
        select(SubscriptionRow.service_id)
        .where(
            SubscriptionRow.platform == scope.platform,
            SubscriptionRow.community_id == scope.community_id,
            SubscriptionRow.channel_id == str(target.id),
        )
        .order_by(col(SubscriptionRow.service_id))
    )
    return list(rows.all())


async def list_targets(
    *, session: AsyncSession, owner_platform: str | None = None, owner_community: str | None = None
) -> list[WebhookTargetRow]:
    """One community's targets, or every target when no owner is given (the admin API)."""
    query = select(WebhookTargetRow).order_by(col(WebhookTargetRow.id))
    if owner_platform is not None and owner_community is not None:
        query = query.where(
            WebhookTargetRow.owner_platform == owner_platform,
            WebhookTargetRow.owner_community == owner_community,
        )
    return list((await session.exec(query)).all())


async def unsubscribe_target(
    *, session: AsyncSession, target: WebhookTargetRow, service_id: str
) -> bool:
    """Stop one service's alerts to a target; the target goes when it follows nothing else."""
    scope = target_scope(target)
    result = await session.exec(
        delete(SubscriptionRow).where(
            col(SubscriptionRow.platform) == scope.platform,
            col(SubscriptionRow.community_id) == scope.community_id,
            col(SubscriptionRow.channel_id) == str(target.id),
            col(SubscriptionRow.service_id) == service_id,
        )
    )
    removed = bool(result.rowcount)
    if removed and not await target_services(session=session, target=target):
        await session.delete(target)
    return removed


async def remove_target(*, session: AsyncSession, target: WebhookTargetRow) -> None:
    """Delete a target and every subscription of it."""
    scope = target_scope(target)
    await session.exec(
        delete(SubscriptionRow).where(
            col(SubscriptionRow.platform) == scope.platform,
            col(SubscriptionRow.community_id) == scope.community_id,
            col(SubscriptionRow.channel_id) == str(target.id),
        )
    )
    await session.delete(target)


async def target_of_subscription(
    *, session: AsyncSession, subscription_id: int
) -> WebhookTargetRow | None:
    """The target a webhook subscription delivers to."""
    subscription = await session.get(SubscriptionRow, subscription_id)
    if subscription is None or subscription.platform != WEBHOOK_PLATFORM:
        return None
    try:
        return await session.get(WebhookTargetRow, int(subscription.channel_id))
    except ValueError:
        return None


async def record_success(*, session: AsyncSession, target: WebhookTargetRow, now: datetime) -> None:
    """A delivery was accepted: the run of failures is over."""
    target.consecutive_failures, target.last_error, target.last_success_at = 0, None, now
    session.add(target)


async def record_failure(
    *, session: AsyncSession, target: WebhookTargetRow, error: str, max_failures: int
) -> bool:
    """A delivery failed for good; True when this failure turned the target off."""
    target.consecutive_failures += 1
    target.last_error = error[:300]
    disabled_now = target.enabled and target.consecutive_failures >= max_failures
    if disabled_now:
        reason = f"{target.consecutive_failures} failed deliveries in a row (last: {error})"
        target.enabled, target.disabled_reason = False, reason[:300]
        await _set_subscriptions_enabled(session, target, enabled=False, reason=reason)
    session.add(target)
    return disabled_now


async def _set_subscriptions_enabled(
    session: AsyncSession, target: WebhookTargetRow, *, enabled: bool, reason: str | None
) -> None:
    scope = target_scope(target)
    rows = await session.exec(
        select(SubscriptionRow).where(
            SubscriptionRow.platform == scope.platform,
            SubscriptionRow.community_id == scope.community_id,
            SubscriptionRow.channel_id == str(target.id),
        )
    )
    for row in rows.all():
        row.enabled, row.disabled_reason = enabled, reason and reason[:300]
        session.add(row)
