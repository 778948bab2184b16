"""The fast lane's edits and thread replies (`bot.delivery.fast_lane`): a round's updates in bulk.

An update of an alert gives each channel that shows it an edit of its message and a reply in its
thread. The first attempt at each, on a message that shows this alert alone, goes out with the
wave, rendered once per alert and round, as `DeliveryAttempts.process` would send it; the new
version an edit showed, and the thread a first reply started, are stored with the wave. A crash
before that leaves the delivery ``sending``: the restarted worker looks for the reply in the
thread (`find_sent`) before replying again, and makes the edit again (the same message, rewritten).

Left to the one-by-one path, which handles them as before: no message yet (the post is still to
come, or it failed), a message several alerts share (a digest, rendered per channel), an edit a
later one already made, and every retry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.alerts import EDIT, THREAD
from bot.core.commands import Reply
from bot.delivery.alert_views import thread_reply
from bot.delivery.among import among
from bot.delivery.attempt import DeliveryAttempts, plain_if_refused
from bot.delivery.bulk_post import alerts_by_id
from bot.delivery.fast_lane import MESSAGES, Job, Stored, chat_senders, first_attempt
from bot.delivery.round_delivery import RoundDelivery
from bot.delivery.round_subscription import Subscribed
from bot.delivery.sender import (
    AlertDataSender,
    ChannelRef,
    PlatformSender,
    SentMessage,
)
from bot.store.models import AlertMessageRow, AlertRow


@dataclass(frozen=True, slots=True)
class _Message:
    """What an edit or a reply needs of the alert's message in the channel (loaded as plain
    columns: a wave loads hundreds, and ORM objects cost several times as much)."""

    row: int
    message_id: str
    thread_id: str | None
    rendered_version: int


@dataclass(frozen=True, slots=True)
class _Update:
    """An edit or a thread reply in the fast lane, with what sending it needs."""

    delivery: RoundDelivery
    message: _Message
    channel: ChannelRef
    sender: PlatformSender
    view: AlertView
    reply: Reply


class Updates:
    """The edits and thread replies of a wave's channels (a `bot.delivery.fast_lane.JobSource`)."""

    def __init__(
        self,
        *,
        senders: Mapping[str, PlatformSender | AlertDataSender],
        attempts: DeliveryAttempts,
    ) -> None:
        self._senders = chat_senders(senders)
        self._attempts = attempts

    async def __call__(
        self,
        session: AsyncSession,
        heads: Sequence[RoundDelivery],
        subscriptions: Mapping[int, Subscribed],
    ) -> list[Job]:
        """First attempts at editing or replying under a message that shows one alert."""
        firsts = [d for d in heads if self._first_update(d, subscriptions.get(d.subscription_id))]
        if not firsts:
            return []
        alerts = await alerts_by_id(session, {d.alert_id for d in firsts})
        messages = await _messages(session, firsts)
        shared = await _shared(session, {m.message_id for m in messages.values()})
        replies: dict[tuple[int, str], Reply] = {}
        jobs: list[Job] = []
        for delivery in firsts:
            alert = alerts.get(delivery.alert_id)
            message = messages.get((delivery.alert_id, delivery.subscription_id))
            if alert is None or message is None or message.message_id in shared:
                continue
            if delivery.action == EDIT and message.rendered_version >= alert.version:
                continue  # a later edit did it: `process` just marks it done
            subscription = subscriptions[delivery.subscription_id]
            view = await self._attempts.views.view(session, alert, subscription)
            if delivery.action == EDIT:
                reply = await self._attempts.views.single(session, alert, subscription)
            else:  # one reply per update and view, not per channel
                key = (id(view), delivery.body)
                if key not in replies:
                    replies[key] = thread_reply(delivery.body, view, named=False)
                reply = replies[key]
            update = _Update(
                delivery,
                message,
                ChannelRef(
                    subscription.platform, subscription.community_id, subscription.channel_id
                ),
                self._senders[delivery.platform],
                view,
                reply,
            )
            act = (
                partial(self._edit, update, alert)
                if delivery.action == EDIT
                else partial(self._reply, update)
            )
            jobs.append(Job(delivery, act))
        return jobs

    def _first_update(self, delivery: RoundDelivery, subscription: Subscribed | None) -> bool:
        """A first attempt at an edit or a reply, to a chat platform, in an enabled channel."""
        chat = delivery.platform in self._senders
        return delivery.action in (EDIT, THREAD) and chat and first_attempt(delivery, subscription)

    async def _edit(self, update: _Update, alert: AlertRow) -> Stored:
        delivery, message, sender = update.delivery, update.message, update.sender
        await self._attempts.limit(delivery.platform)
        target = SentMessage(message.message_id, message.thread_id)
        await plain_if_refused(
            delivery, update.view, lambda r: sender.edit(update.channel, target, r), update.reply
        )
        return Stored(message_row=message.row, rendered_version=alert.version)

    async def _reply(self, update: _Update) -> Stored:
        delivery, message, sender = update.delivery, update.message, update.sender
        # As `process` paces a first reply: once where a retry would look first, once to send.
        await self._attempts.limit(delivery.platform)
        await self._attempts.limit(delivery.platform)
        parent = SentMessage(message.message_id, message.thread_id)

        async def answer(shown: Reply) -> SentMessage:
            return await sender.reply_in_thread(update.channel, parent, shown, key=delivery.key)

        replied = await plain_if_refused(delivery, update.view, answer, update.reply)
        started = replied.thread_id if replied.thread_id and not message.thread_id else None
        return Stored(message_row=message.row, thread_id=started)


async def _messages(
    session: AsyncSession, deliveries: Sequence[RoundDelivery]
) -> dict[tuple[int, int], _Message]:
    """The messages these deliveries edit or reply under, by (alert, subscription)."""
    table = MESSAGES
    query = core_select(
        table.c.alert_id,
        table.c.subscription_id,
        table.c.id,
        table.c.message_id,
        table.c.thread_id,
        table.c.rendered_version,
    ).where(
        table.c.alert_id.in_({d.alert_id for d in deliveries}),
        among(table.c.subscription_id, {d.subscription_id for d in deliveries}),
    )
    rows = (await (await session.connection()).execute(query)).all()
    return {
        (alert, subscription): _Message(row or 0, message, thread, version)
        for alert, subscription, row, message, thread, version in rows
    }


async def _shared(session: AsyncSession, message_ids: Collection[str]) -> set[str]:
    """Those of these messages that show more than one alert (a digest, anywhere)."""
    if not message_ids:
        return set()
    query = select(AlertMessageRow.message_id, AlertMessageRow.alert_id).where(
        among(col(AlertMessageRow.message_id), message_ids)
    )
    alerts: dict[str, set[int]] = defaultdict(set)
    for message_id, alert_id in (await session.exec(query)).all():
        alerts[message_id].add(alert_id)
    return {message_id for message_id, shown in alerts.items() if len(shown) > 1}
