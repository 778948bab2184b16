"""One attempt at one staged delivery: look it up, send it (or find it sent), store the outcome.

The outbox worker (`bot.delivery.worker`) claims due deliveries and runs these in order per
channel; everything about a single delivery, from its checks to its retry schedule, lives here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.alerts import EDIT, POST, THREAD, AlertKind
from bot.core.backoff import backoff_delay
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.core.outbox import DeliveryOutcome, DeliveryStatus
from bot.core.timeutil import Clock
from bot.delivery.alert_views import (
    minimal_reply,
    render_message,
    thread_reply,
)
from bot.delivery.data_delivery import deliver_data
from bot.delivery.digest import recent_open_message
from bot.delivery.retry_after import clamp_wait
from bot.delivery.round_delivery import Tried
from bot.delivery.sender import (
    AlertDataSender,
    ChannelRef,
    PayloadRejectedError,
    PermanentDeliveryError,
    PlatformSender,
    SentMessage,
    TransientDeliveryError,
)
from bot.delivery.view_cache import RoundViews
from bot.sources.catalog import Catalog
from bot.store.availability import DatabaseOutageLog
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow
from bot.store.subscription_store import disable_subscription

log = logging.getLogger(__name__)
_Result = TypeVar("_Result")

RATE_LIMITED = "rate limited"
RATE_LIMIT_PATIENCE = 10
"""How many times more attempts a delivery gets while the platform answers 429s."""
Limiter = Callable[[str], Awaitable[None]]
OutcomeHook = Callable[[Tried, str], Awaitable[None]]
"""Told each attempt's result (done, retry, failed, or exhausted: retries used up) and the
delivery as stored afterwards."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How hard the worker pushes."""

    batch: int = 500
    """Deliveries a round takes at most. A round costs a few statements whatever its size, so
    a large fan-out costs less CPU per delivery in larger rounds (`bench/scale.py`: 500 instead
    of 200 took a tenth or more off). Work staged meanwhile waits for the next round: a full one
    is 500 / 16 request times, well under 2 s on a platform answering in 50 ms, longer where
    the platform paces us."""
    channel_concurrency: int = 16
    max_attempts: int = 10
    base_backoff: float = 2.0
    max_backoff: float = 600.0
    digest_window: timedelta = timedelta(minutes=10)
    """A second incident in a channel within this window joins the first one's message."""


class DeliveryAttempts:
    """Sends one delivery at a time through its platform's sender and stores what happened."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, PlatformSender | AlertDataSender],
        catalog: Catalog,
        clock: Clock,
        config: WorkerConfig,
        database: DatabaseOutageLog,
        limiter: Limiter | None = None,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        """``database``: the worker's outage log, so a send cut short by an outage is one more
        failed attempt of that outage rather than a traceback of its own."""
        self._sessions = sessions
        self._senders = dict(senders)
        self._catalog = catalog
        self._clock = clock
        self._config = config
        self._database = database
        self._limiter = limiter
        self.on_outcome = on_outcome
        self.views = RoundViews(catalog, clock)

    def start_round(self) -> None:
        """A round begins: views older than a second are worked out anew."""
        self.views.start_round()

    async def process(self, delivery_id: int, *, owner: int | None) -> DeliveryStatus:
        """Attempt one delivery claimed by ``owner``; returns its status afterwards."""
        async with self._sessions() as session:
            delivery = await session.get(DeliveryRow, delivery_id)
            if delivery is None or delivery.status != DeliveryStatus.PENDING:
                return DeliveryStatus.DONE
            if delivery.claimed_by != owner:
                return (
                    DeliveryStatus.DONE
                )  # taken back after we lost our link: its new owner sends it
            subscription = await session.get(SubscriptionRow, delivery.subscription_id)
            alert = await session.get(AlertRow, delivery.alert_id)
            if subscription is None or alert is None or not subscription.enabled:
                return await self._finish(
                    session, delivery, DeliveryStatus.FAILED, "subscription or alert gone"
                )
            message = (
                await session.exec(
                    select(AlertMessageRow).where(
                        AlertMessageRow.alert_id == delivery.alert_id,
                        AlertMessageRow.subscription_id == delivery.subscription_id,
                    )
                )
            ).first()
            channel = ChannelRef(
                subscription.platform, subscription.community_id, subscription.channel_id
            )
            sender = self._senders[delivery.platform]
            if delivery.action != POST and message is None:
                return await self._wait_for_post(session, delivery)
            if delivery.action == POST and message is not None:
                return await self._finish(session, delivery, DeliveryStatus.DONE, None)
            if (
                delivery.action == EDIT
                and message is not None
                and message.rendered_version >= alert.version
            ):
                return await self._finish(
                    session, delivery, DeliveryStatus.DONE, None
                )  # a later edit did it
            # After a 429 nothing was created, so there is nothing to look for before resending.
            retrying = delivery.attempts > 0 and not (delivery.last_error or "").startswith(
                RATE_LIMITED
            )
            delivery.status, delivery.attempts = DeliveryStatus.SENDING, delivery.attempts + 1
            session.add(delivery)
            await session.commit()
            try:
                await self._act(
                    session, delivery, alert, message, subscription, channel, sender, retrying
                )
            except Exception as exc:
                return await self._settle_failure(session, delivery, exc, unsure=retrying)
            return await self._finish(session, delivery, DeliveryStatus.DONE, None)

    async def settle_failure(self, delivery_id: int, exc: Exception) -> DeliveryStatus:
        """Store a failed first attempt (marked ``sending`` elsewhere, `bot.delivery.bulk_post`)
        as `process` would have: a retry, a failure, a paused subscription."""
        async with self._sessions() as session:
            delivery = await session.get(DeliveryRow, delivery_id)
            if delivery is None:
                return DeliveryStatus.DONE
            return await self._settle_failure(session, delivery, exc, unsure=False)

    async def _settle_failure(
        self, session: AsyncSession, delivery: DeliveryRow, exc: Exception, *, unsure: bool
    ) -> DeliveryStatus:
        if isinstance(exc, TransientDeliveryError):
            return await self._retry(
                session, delivery, str(exc), exc.retry_after, unsure=unsure, paced=exc
            )
        if isinstance(exc, PermanentDeliveryError):
            if exc.pause_subscription:
                await disable_subscription(
                    session=session, subscription_id=delivery.subscription_id, reason=str(exc)
                )
                log.warning("subscription %s paused: %s", delivery.subscription_id, exc)
            return await self._finish(session, delivery, DeliveryStatus.FAILED, str(exc))
        self._database.failed(exc, "delivery %s failed unexpectedly", delivery.id)
        return await self._retry(session, delivery, type(exc).__name__, None)

    async def _act(
        self,
        session: AsyncSession,
        delivery: DeliveryRow,
        alert: AlertRow,
        message: AlertMessageRow | None,
        subscription: SubscriptionRow,
        channel: ChannelRef,
        sender: PlatformSender | AlertDataSender,
        retrying: bool,
    ) -> None:
        view = await self.views.view(session, alert, subscription)
        if isinstance(sender, AlertDataSender):
            await deliver_data(
                session, sender, channel, delivery, alert, message, view, limit=self.limit
            )
            return
        if delivery.action == POST:
            shared = await self._recent_open_message(session, subscription, alert)
            if shared is not None:
                await self._join_digest(
                    session, shared, alert, delivery, view, subscription, channel, sender
                )
                return
            reply = await self.views.single(session, alert, subscription)
            await _release(session)
            await self.limit(delivery.platform)
            found = await sender.find_sent(channel, delivery.key) if retrying else None
            if found is None:
                await self.limit(delivery.platform)
            mention = Mention.from_stored(subscription.mention_role)
            sent = found
            if sent is None:

                async def post(shown: Reply) -> SentMessage:
                    return await sender.send(channel, shown, key=delivery.key, mention_role=mention)

                sent = await plain_if_refused(delivery, view, post, reply)
            session.add(
                AlertMessageRow(
                    alert_id=alert.id or 0,
                    subscription_id=subscription.id or 0,
                    message_id=sent.message_id,
                    thread_id=sent.thread_id,
                    rendered_version=alert.version,
                )
            )
        elif delivery.action == EDIT and message is not None:
            version = alert.version
            reply = await render_message(session, message, subscription, self._catalog)
            await _release(session)
            await self.limit(delivery.platform)
            target = SentMessage(message.message_id, message.thread_id)
            await plain_if_refused(delivery, view, lambda r: sender.edit(channel, target, r), reply)
            message.rendered_version = max(message.rendered_version, version)
            session.add(message)
        elif delivery.action == THREAD and message is not None:
            others = (
                await session.exec(
                    select(func.count())
                    .select_from(AlertMessageRow)
                    .where(
                        AlertMessageRow.message_id == message.message_id,
                        AlertMessageRow.alert_id != message.alert_id,
                    )
                )
            ).one()
            reply = thread_reply(delivery.body, view, named=bool(others))
            await _release(session)
            await self.limit(delivery.platform)
            # A thread started from a message takes its id (Discord) or its ts (Slack).
            thread = message.thread_id or message.message_id
            found = (
                await sender.find_sent(channel, delivery.key, thread_id=thread)
                if retrying
                else None
            )
            if found is None:
                await self.limit(delivery.platform)
            else:  # found where we looked: in that thread, which then exists
                found = SentMessage(found.message_id, found.thread_id or thread)
            parent = SentMessage(message.message_id, message.thread_id)
            replied = found
            if replied is None:

                async def answer(shown: Reply) -> SentMessage:
                    return await sender.reply_in_thread(channel, parent, shown, key=delivery.key)

                replied = await plain_if_refused(delivery, view, answer, reply)
            if replied.thread_id and not message.thread_id:
                message.thread_id = replied.thread_id
                session.add(message)

    async def _recent_open_message(
        self, session: AsyncSession, subscription: SubscriptionRow, alert: AlertRow
    ) -> AlertMessageRow | None:
        if alert.kind != AlertKind.INCIDENT or self._config.digest_window <= timedelta(0):
            return None
        since = self._clock() - self._config.digest_window
        return await recent_open_message(session, subscription, alert, since=since)

    async def _join_digest(
        self,
        session: AsyncSession,
        shared: AlertMessageRow,
        alert: AlertRow,
        delivery: DeliveryRow,
        view: AlertView,
        subscription: SubscriptionRow,
        channel: ChannelRef,
        sender: PlatformSender,
    ) -> None:
        """Fold a new incident into the channel's recent alert instead of posting a burst."""
        joined = AlertMessageRow(
            alert_id=alert.id or 0,
            subscription_id=subscription.id or 0,
            message_id=shared.message_id,
            thread_id=shared.thread_id,
            rendered_version=alert.version,
        )
        session.add(joined)
        await session.flush()
        digest = await render_message(session, joined, subscription, self._catalog)
        await self.limit(subscription.platform)
        target = SentMessage(shared.message_id, shared.thread_id)
        await plain_if_refused(delivery, view, lambda r: sender.edit(channel, target, r), digest)

    async def limit(self, platform: str) -> None:
        """Wait for the worker's limiter (if any) before a request to ``platform``."""
        if self._limiter is not None:
            await self._limiter(platform)

    async def _wait_for_post(self, session: AsyncSession, delivery: DeliveryRow) -> DeliveryStatus:
        post = (
            await session.exec(
                select(DeliveryRow).where(
                    DeliveryRow.alert_id == delivery.alert_id,
                    DeliveryRow.subscription_id == delivery.subscription_id,
                    DeliveryRow.action == POST,
                )
            )
        ).first()
        if post is None or post.status == DeliveryStatus.FAILED:
            return await self._finish(
                session, delivery, DeliveryStatus.FAILED, "the alert was never posted here"
            )
        delivery.next_attempt_at = self._clock() + timedelta(seconds=self._config.base_backoff)
        delivery.claimed_by = None
        session.add(delivery)
        await session.commit()
        return DeliveryStatus.PENDING

    async def _retry(
        self,
        session: AsyncSession,
        delivery: DeliveryRow,
        error: str,
        retry_after: float | None,
        *,
        unsure: bool = False,
        paced: TransientDeliveryError | None = None,
    ) -> DeliveryStatus:
        """``unsure``: an earlier attempt may have created the message; a 429 now (on the check,
        say) does not prove otherwise, so the next attempt checks again."""
        limit = self._config.max_attempts
        if paced is not None and paced.rate_limited:
            limit *= RATE_LIMIT_PATIENCE
        if delivery.attempts >= limit:
            log.warning(
                "delivery %s gave up after %s attempts: %s", delivery.id, delivery.attempts, error
            )
            return await self._finish(
                session, delivery, DeliveryStatus.FAILED, error, outcome=DeliveryOutcome.EXHAUSTED
            )
        told = clamp_wait(retry_after) if retry_after is not None else None
        if told is not None:
            # The platform said exactly when: no more, no less (and nothing was created now).
            # Clamped again here: a sender's bad reading must not crash the whole round.
            delay = told
            error = error if unsure else f"{RATE_LIMITED}: {error}"
        else:
            delay = backoff_delay(
                delivery.attempts,
                base=self._config.base_backoff,
                cap=self._config.max_backoff,
                jitter=0.5,
            )
        delivery.status, delivery.last_error = DeliveryStatus.PENDING, error[:300]
        delivery.next_attempt_at = self._clock() + timedelta(seconds=delay)
        delivery.claimed_by = None
        session.add(delivery)
        await session.commit()
        await self.tell(delivery, DeliveryOutcome.RETRY)
        return DeliveryStatus.PENDING

    async def _finish(
        self,
        session: AsyncSession,
        delivery: DeliveryRow,
        status: DeliveryStatus,
        error: str | None,
        *,
        outcome: DeliveryOutcome | None = None,
    ) -> DeliveryStatus:
        delivery.status, delivery.last_error = status, (error or None) and error[:300]
        delivery.done_at, delivery.claimed_by = self._clock(), None
        session.add(delivery)
        await session.commit()
        await self.tell(delivery, outcome or DeliveryOutcome(status))
        return status

    async def tell(self, delivery: Tried, outcome: DeliveryOutcome) -> None:
        """Tell the outcome hook, which must never stop deliveries."""
        if self.on_outcome is None:
            return
        try:
            await self.on_outcome(delivery, outcome)
        except Exception:  # metrics or bookkeeping must never stop deliveries
            log.exception("delivery outcome hook failed")


async def _release(session: AsyncSession) -> None:
    """End the session's read transaction before a network call, returning its connection.

    Held across the call, 16 channels in flight would keep 16 connections, and a sender that
    needs one of its own (a Slack workspace's token) could wait on the pool until it timed out.
    Nothing is pending here, and loaded rows stay usable (the sessions do not expire on commit).
    """
    await session.commit()


async def plain_if_refused(
    delivery: Tried,
    view: AlertView,
    call: Callable[[Reply], Awaitable[_Result]],
    reply: Reply,
) -> _Result:
    """``call(reply)``; when the platform refuses the message itself, log our bug once and send
    the alert's plain version instead (a second refusal fails the delivery, never the channel)."""
    try:
        return await call(reply)
    except PayloadRejectedError as exc:
        log.error(
            "delivery %s: %s refused the message we built (a bug on our side); "
            "sending a plain version instead: %s",
            delivery.id,
            delivery.platform,
            exc,
        )
        return await call(minimal_reply(view))
