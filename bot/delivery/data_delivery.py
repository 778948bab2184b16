"""How the outbox worker hands an alert to a program (an outgoing webhook) instead of a chat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.alerts import EDIT, THREAD
from bot.delivery.sender import AlertData, AlertDataSender, ChannelRef
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow


async def deliver_data(
    session: AsyncSession,
    sender: AlertDataSender,
    target: ChannelRef,
    delivery: DeliveryRow,
    alert: AlertRow,
    message: AlertMessageRow | None,
    view: AlertView,
    *,
    limit: Callable[[str], Awaitable[None]],
) -> None:
    """Send the alert's state on its post and on each edit, and record it like a message.

    Never digested: a program wants one document per incident. A thread reply says nothing the
    edit staged beside it does not, so it costs no request.
    """
    if delivery.action != THREAD:
        await limit(delivery.platform)
        data = AlertData(
            delivery_key=delivery.key,
            action=delivery.action,
            alert_id=alert.id or 0,
            subject_id=alert.subject_id,
            version=alert.version,
            view=view,
        )
        await sender.deliver(target, data)
    if message is None:
        session.add(
            AlertMessageRow(
                alert_id=alert.id or 0,
                subscription_id=delivery.subscription_id,
                message_id=delivery.key,
                rendered_version=alert.version,
            )
        )
    elif delivery.action == EDIT:
        message.rendered_version = max(message.rendered_version, alert.version)
        session.add(message)
