"""The outbox worker: sends staged deliveries, in order per channel, exactly once.

A delivery is marked ``sending`` and committed before the network call. If the process dies
there, the restarted worker asks the platform whether the message already exists (`find_sent`:
Discord nonce / Slack metadata) before sending again, so a crash at any point posts nothing
twice and loses nothing.

This module claims due deliveries and runs rounds; a round's plain first attempts (posts, edits,
thread replies) go out together (`bot.delivery.fast_lane`), and sending one delivery is
`bot.delivery.attempt`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from sqlalchemy import update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.outbox import DeliveryStatus
from bot.core.timeutil import Clock
from bot.delivery.attempt import (
    DeliveryAttempts,
    Limiter,
    OutcomeHook,
    WorkerConfig,
)
from bot.delivery.bulk_post import NewPosts
from bot.delivery.bulk_update import Updates
from bot.delivery.claim import (
    INTERRUPTED,
    OutboxLink,
    ShardRoute,
    due_deliveries,
    release_orphans,
)
from bot.delivery.fast_lane import FastLane
from bot.delivery.round_delivery import RoundDelivery
from bot.delivery.round_subscription import Subscribed
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.sources.catalog import Catalog
from bot.store.availability import DatabaseOutageLog
from bot.store.models import DeliveryRow

__all__ = ["Limiter", "OutboxWorker", "OutcomeHook", "WorkerConfig"]

log = logging.getLogger(__name__)


class OutboxWorker:
    """Drains the outbox through the platform senders."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, PlatformSender | AlertDataSender],
        catalog: Catalog,
        clock: Clock,
        config: WorkerConfig | None = None,
        limiter: Limiter | None = None,
        on_outcome: OutcomeHook | None = None,
        link: OutboxLink | None = None,
        shards: ShardRoute | None = None,
    ) -> None:
        """``link`` (PostgreSQL) shares the outbox with other worker processes; without it this
        worker assumes it is the only one. ``shards`` limits Discord to the guilds it runs."""
        self._sessions = sessions
        self._platforms = list(senders)
        self._clock = clock
        self._config = config or WorkerConfig()
        self._database = DatabaseOutageLog(log, "outbox deliveries", clock=clock)
        self._attempts = DeliveryAttempts(
            sessions=sessions,
            senders=senders,
            catalog=catalog,
            clock=clock,
            config=self._config,
            database=self._database,
            limiter=limiter,
            on_outcome=on_outcome,
        )
        self._fast = FastLane(
            sessions=sessions,
            attempts=self._attempts,
            clock=clock,
            config=self._config,
            sources=[
                NewPosts(
                    senders=senders, attempts=self._attempts, clock=clock, config=self._config
                ),
                Updates(senders=senders, attempts=self._attempts),
            ],
        )
        self._wake = asyncio.Event()
        self._link, self._shards = link, shards
        self._owner: int | None = None
        # Outcomes maybe unstored (database gone mid-round): "sending" would wait for a restart.
        self._stranded: set[int] = set()
        if link is not None:
            link.subscribe(self.wake)

    @property
    def on_outcome(self) -> OutcomeHook | None:
        """Told each attempt's result (metrics, outgoing webhooks); settable after start."""
        return self._attempts.on_outcome

    @on_outcome.setter
    def on_outcome(self, hook: OutcomeHook | None) -> None:
        self._attempts.on_outcome = hook

    def wake(self) -> None:
        """New deliveries were committed: look now instead of at the next tick."""
        self._wake.set()

    async def recover(self) -> int:
        """After a restart: deliveries left ``sending`` go back to the queue (checked first).

        Shared outbox: only those of workers that are gone (others may be sending right now)."""
        if self._link is not None:
            self._owner = await self._link.ensure()
            async with self._sessions() as session:
                return await release_orphans(session)
        async with self._sessions() as session:
            result = await session.exec(
                update(DeliveryRow)
                .where(col(DeliveryRow.status) == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.PENDING, last_error=INTERRUPTED)
            )
            await session.commit()
        return int(result.rowcount or 0)

    async def run_forever(self, stop: asyncio.Event, *, tick_seconds: float = 2.0) -> None:
        """Drain, then wait for a wake-up or a tick (retries come due on ticks)."""
        try:
            await self.recover()
        except Exception as exc:
            self._database.failed(exc, "outbox recovery failed; retrying next round")
        try:
            await self._rounds(stop, tick_seconds)
        finally:
            if self._link is not None:
                await self._link.close()

    async def _rounds(self, stop: asyncio.Event, tick_seconds: float) -> None:
        while not stop.is_set():
            # Cleared before the round, so a wake-up that arrives during it is not lost.
            self._wake.clear()
            if await self.run_round():
                continue  # more may be due (a full batch, or work staged meanwhile)
            waiter = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait(
                {waiter, stopper}, timeout=tick_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (waiter, stopper):
                task.cancel()

    async def run_round(self) -> int:
        """One round as `run_forever` runs it: a failure is logged (a database outage once, a
        bug with its traceback) and counts as nothing handled; the next tick tries again."""
        try:
            handled = await self.run_once()
        except Exception as exc:
            self._database.failed(exc, "outbox round failed; retrying next tick")
            return 0
        if self._link is None or self._owner is not None:  # else the link is down (and says so)
            self._database.answered()
        return handled

    async def run_once(self) -> int:
        """Process every due delivery once; returns how many were handled."""
        now = self._clock()
        if self._link is not None:
            self._owner = await self._link.ensure()
            if self._owner is None:
                return 0  # database unreachable: the next tick tries again
        self._attempts.start_round()
        if self._stranded:
            await self._requeue_stranded()
        due = await due_deliveries(
            self._sessions,
            owner=self._owner,
            platforms=self._platforms,
            shards=self._shards,
            now=now,
            limit=self._config.batch,
        )
        # One queue per channel, not per subscription: a channel following several services
        # gets its messages in order, and a second service failing joins the first's message.
        subscriptions = due.subscriptions
        channels: dict[tuple[str, str, str], list[RoundDelivery]] = {}
        for delivery in due.deliveries:
            sub = subscriptions.get(delivery.subscription_id)
            orphan = ("", "", str(delivery.subscription_id))
            place = (sub.platform, sub.community_id, sub.channel_id) if sub else orphan
            channels.setdefault(place, []).append(delivery)
        queues = list(channels.values())
        # First the fast lane, together (`bot.delivery.fast_lane`); then the rest one by one.
        fast = await self._fast_waves(queues, subscriptions)
        gate = asyncio.Semaphore(self._config.channel_concurrency)

        async def drain(queue: Sequence[RoundDelivery]) -> int:
            handled = 0
            async with gate:
                for delivery in queue:  # in order: a post before its edits and replies
                    try:
                        outcome = await self._attempts.process(delivery.id, owner=self._owner)
                    except BaseException:
                        self._stranded.add(delivery.id)
                        raise
                    handled += 1
                    if outcome != DeliveryStatus.DONE:
                        break
                return handled

        counts = await asyncio.gather(*(drain(queue) for queue in queues if queue))
        return fast + sum(counts)

    async def _fast_waves(
        self, queues: list[list[RoundDelivery]], subscriptions: Mapping[int, Subscribed]
    ) -> int:
        """Offer the fast lane each channel's next delivery, wave after wave, while it takes
        any; returns how many it handled. What it settled leaves its queue, and a queue whose
        delivery did not succeed is done for this round, as one by one."""
        handled = 0
        while heads := [queue[0] for queue in queues if queue]:
            settled = await self._fast.run(
                heads, subscriptions, owner=self._owner, stranded=self._stranded
            )
            if not settled:
                break
            handled += len(settled)
            for queue in queues:
                status = settled.get(queue[0].id) if queue else None
                if status == DeliveryStatus.DONE:
                    del queue[0]
                elif status is not None:
                    queue.clear()
        return handled

    async def _requeue_stranded(self) -> None:
        ids, query = list(self._stranded), update(DeliveryRow)
        if self._link is not None:  # only ours: another worker may have taken them back already
            query = query.where(col(DeliveryRow.claimed_by) == self._owner)
        async with self._sessions() as session:  # "interrupted": look before resending
            await session.exec(
                query.where(
                    col(DeliveryRow.id).in_(ids), col(DeliveryRow.status) == DeliveryStatus.SENDING
                ).values(status=DeliveryStatus.PENDING, last_error=INTERRUPTED)
            )
            await session.commit()
        self._stranded.difference_update(ids)
