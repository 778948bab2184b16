"""The fast lane's first posts (`bot.delivery.fast_lane`): a round's new alerts in bulk.

A first attempt at posting an alert in a channel that has no message for it and no recent open
incident to join goes out with the wave; the message it creates is stored with the wave's
outcomes. A crash before that leaves it ``sending``, and the restarted worker checks with
`find_sent` before sending again, as after a crash during a single delivery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.alerts import POST, AlertKind
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.core.timeutil import Clock
from bot.delivery.among import among
from bot.delivery.attempt import DeliveryAttempts, WorkerConfig, plain_if_refused
from bot.delivery.digest import ChannelKey, open_alerts_posted_in, other_open_incidents
from bot.delivery.fast_lane import Job, Stored, chat_senders, first_attempt
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
class _Post:
    """A delivery in the fast lane, with what sending it needs."""

    delivery: RoundDelivery
    alert: AlertRow
    subscription: Subscribed
    sender: PlatformSender
    view: AlertView
    reply: Reply

    @property
    def channel(self) -> ChannelRef:
        s = self.subscription
        return ChannelRef(s.platform, s.community_id, s.channel_id)


class NewPosts:
    """The first posts of a wave's channels (a `bot.delivery.fast_lane.JobSource`)."""

    def __init__(
        self,
        *,
        senders: Mapping[str, PlatformSender | AlertDataSender],
        attempts: DeliveryAttempts,
        clock: Clock,
        config: WorkerConfig,
    ) -> None:
        self._senders = chat_senders(senders)
        self._attempts = attempts
        self._clock = clock
        self._config = config

    async def __call__(
        self,
        session: AsyncSession,
        heads: Sequence[RoundDelivery],
        subscriptions: Mapping[int, Subscribed],
    ) -> list[Job]:
        """First attempts at posting, in enabled channels with no message for the alert yet
        and (for incidents) no recent open incident's message to join."""
        firsts = [d for d in heads if self._first_post(d, subscriptions.get(d.subscription_id))]
        if not firsts:
            return []
        alerts = await alerts_by_id(session, {d.alert_id for d in firsts})
        posted = await _posted(session, firsts)
        joinable = await self._joinable(session, firsts, subscriptions, alerts)
        jobs: list[Job] = []
        views = self._attempts.views
        # What a channel shows depends on the alert and on whether it lists alternatives: looked
        # up once here for the whole wave, not once per channel (`RoundViews` keeps it a round).
        shown: dict[tuple[int, bool], tuple[AlertView, Reply]] = {}
        for delivery in firsts:
            alert = alerts.get(delivery.alert_id)
            subscription = subscriptions[delivery.subscription_id]
            if alert is None or (delivery.alert_id, delivery.subscription_id) in posted:
                continue
            if joinable and joinable.get(_channel_key(subscription), set()) - {delivery.alert_id}:
                continue
            looks = (delivery.alert_id, subscription.alternatives)
            if looks not in shown:
                shown[looks] = (
                    await views.view(session, alert, subscription),
                    await views.single(session, alert, subscription),
                )
            view, reply = shown[looks]
            post = _Post(
                delivery, alert, subscription, self._senders[delivery.platform], view, reply
            )
            jobs.append(Job(delivery, partial(self._send, post)))
        return jobs

    def _first_post(self, delivery: RoundDelivery, subscription: Subscribed | None) -> bool:
        """A first attempt at posting, to a chat platform, in an enabled channel."""
        chat = delivery.platform in self._senders
        return delivery.action == POST and chat and first_attempt(delivery, subscription)

    async def _joinable(
        self,
        session: AsyncSession,
        firsts: Sequence[RoundDelivery],
        subscriptions: Mapping[int, Subscribed],
        alerts: Mapping[int, AlertRow],
    ) -> dict[ChannelKey, set[int]]:
        """Open incidents recently posted in the channels of new incidents (a digest joins
        them; see `DeliveryAttempts._recent_open_message`)."""
        window = self._config.digest_window
        if window.total_seconds() <= 0:
            return {}
        incidents = [
            d
            for d in firsts
            if (a := alerts.get(d.alert_id)) is not None and a.kind == AlertKind.INCIDENT
        ]
        posting = {d.alert_id for d in incidents}
        # One incident fanning out, and no other open: nothing to join, whatever was posted.
        if len(posting) == 1 and not await other_open_incidents(session, posting):
            return {}
        channels = {_channel_key(subscriptions[d.subscription_id]) for d in incidents}
        return await open_alerts_posted_in(session, channels, since=self._clock() - window)

    async def _send(self, post: _Post) -> Stored:
        delivery, sender = post.delivery, post.sender
        # As `process` paces a first post: once where a retry would look first, once to send.
        await self._attempts.limit(delivery.platform)
        await self._attempts.limit(delivery.platform)
        mention = Mention.from_stored(post.subscription.mention_role)

        async def send(shown: Reply) -> SentMessage:
            return await sender.send(post.channel, shown, key=delivery.key, mention_role=mention)

        message = await plain_if_refused(delivery, post.view, send, post.reply)
        return Stored(
            new_message={
                "alert_id": post.alert.id or 0,
                "subscription_id": post.subscription.id or 0,
                "message_id": message.message_id,
                "thread_id": message.thread_id,
                "rendered_version": post.alert.version,
            }
        )


def _channel_key(subscription: Subscribed) -> ChannelKey:
    return (subscription.platform, subscription.community_id, subscription.channel_id)


async def alerts_by_id(session: AsyncSession, ids: set[int]) -> dict[int, AlertRow]:
    """The alerts of a wave's deliveries, by id."""
    rows = (await session.exec(select(AlertRow).where(col(AlertRow.id).in_(list(ids))))).all()
    return {(row.id or 0): row for row in rows}


async def _posted(
    session: AsyncSession, deliveries: Sequence[RoundDelivery]
) -> set[tuple[int, int]]:
    """(alert, subscription) pairs among these deliveries' that already have a message."""
    query = select(AlertMessageRow.alert_id, AlertMessageRow.subscription_id).where(
        col(AlertMessageRow.alert_id).in_({d.alert_id for d in deliveries}),
        among(col(AlertMessageRow.subscription_id), {d.subscription_id for d in deliveries}),
    )
    return {(a, s) for a, s in (await session.exec(query)).all()}
