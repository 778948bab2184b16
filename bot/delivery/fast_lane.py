"""The outbox worker's fast lane: a round's plain first attempts, marked, sent and stored in bulk.

Most of a fan-out is the first attempt at something ordinary: posting an alert in a channel that
has no message for it (`bot.delivery.bulk_post`), or editing that message or replying in its
thread after an update (`bot.delivery.bulk_update`). For those, a wave of the round (the next
delivery of every channel) costs a handful of statements in all instead of about ten per
delivery, with the rules of `DeliveryAttempts.process` kept: one UPDATE marks them ``sending``
(only those still pending and claimed by this worker, committed before any network call), the
requests go out ``channel_concurrency`` at a time, then one transaction stores every outcome and
marks every delivery done. A crash in between leaves them ``sending`` with an attempt counted,
and the restarted worker takes them one by one as retries: a post or a reply is looked for with
`find_sent` before it is sent again, and an edit is made again (it rewrites the same message).
A failed request is stored as `process` would store it. Everything else (retries, digests,
messages several alerts share, machine receivers) goes one by one through `process`.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.outbox import DeliveryOutcome, DeliveryStatus
from bot.core.timeutil import Clock
from bot.delivery.among import among
from bot.delivery.attempt import DeliveryAttempts, WorkerConfig
from bot.delivery.round_delivery import RoundDelivery
from bot.delivery.round_subscription import Subscribed
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.store.models import AlertMessageRow, DeliveryRow

MESSAGES = AlertMessageRow.__table__  # type: ignore[attr-defined]
"""The alert_messages table, for plain (not ORM) statements on many rows."""


@dataclass(frozen=True, slots=True)
class Stored:
    """What a sent job leaves to store, besides its delivery being done."""

    new_message: dict[str, Any] | None = None
    """An alert_messages row to insert (a first post)."""
    message_row: int | None = None
    """The alert_messages row an edit or a reply changes."""
    rendered_version: int | None = None
    """The alert version an edit showed (kept if the row already shows a later one)."""
    thread_id: str | None = None
    """The thread a reply started (stored on a message that had none)."""


@dataclass(frozen=True, slots=True)
class Job:
    """One delivery the fast lane takes, and the request that carries it out."""

    delivery: RoundDelivery
    act: Callable[[], Awaitable[Stored]]


JobSource = Callable[
    [AsyncSession, Sequence[RoundDelivery], Mapping[int, Subscribed]], Awaitable[list[Job]]
]
"""Picks the jobs it can take among a wave's deliveries (loading what they need in bulk)."""


class FastLane:
    """Runs waves of first attempts through the job sources it is given."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        attempts: DeliveryAttempts,
        clock: Clock,
        config: WorkerConfig,
        sources: Sequence[JobSource],
    ) -> None:
        self._sessions = sessions
        self._attempts = attempts
        self._clock = clock
        self._config = config
        self._sources = list(sources)

    async def run(
        self,
        heads: Sequence[RoundDelivery],
        subscriptions: Mapping[int, Subscribed],
        *,
        owner: int | None,
        stranded: set[int],
    ) -> dict[int, DeliveryStatus]:
        """Carry out those of ``heads`` (each the next delivery of its channel this round) that
        the lane takes; returns the status of each one it took. Deliveries left ``sending`` by
        an interruption are added to ``stranded``."""
        async with self._sessions() as session:
            jobs = [
                job
                for source in self._sources
                for job in await source(session, heads, subscriptions)
            ]
            if not jobs:
                return {}
            mine = await _mark_sending(session, [job.delivery.id for job in jobs], owner)
        taken = [job for job in jobs if job.delivery.id in mine]
        # Not ours any more: its owner sends it.
        statuses = {job.delivery.id: DeliveryStatus.DONE for job in jobs}
        settled: set[int] = set()
        try:
            results = await self._act_all(taken)
            done = [(j, r) for j, r in zip(taken, results, strict=True) if isinstance(r, Stored)]
            await self._store(done)
            settled.update(job.delivery.id for job, _ in done)
            for job, result in zip(taken, results, strict=True):
                if isinstance(result, Exception):
                    delivery_id = job.delivery.id
                    statuses[delivery_id] = await self._attempts.settle_failure(delivery_id, result)
                    settled.add(delivery_id)
        except BaseException:
            stranded.update(mine - settled)  # left "sending": put back, checked before resending
            raise
        if self._attempts.on_outcome is not None:  # told what the rows now hold
            for job, _ in done:
                stored = replace(
                    job.delivery,
                    status=DeliveryStatus.DONE,
                    attempts=job.delivery.attempts + 1,
                    last_error=None,
                )
                await self._attempts.tell(stored, DeliveryOutcome.DONE)
        return statuses

    async def _act_all(self, jobs: Sequence[Job]) -> list[Stored | Exception]:
        """Each job's result, ``channel_concurrency`` at a time (as many runners, each taking
        the next job: cheaper than a task per job waiting on a semaphore)."""
        results: list[Stored | Exception] = []
        results.extend(RuntimeError("not sent") for _ in jobs)
        queue = iter(enumerate(jobs))

        async def runner() -> None:
            for index, job in queue:
                try:
                    results[index] = await job.act()
                except Exception as exc:  # stored afterwards, as `process` stores it
                    results[index] = exc

        await asyncio.gather(*(runner() for _ in range(self._config.channel_concurrency)))
        return results

    async def _store(self, done: Sequence[tuple[Job, Stored]]) -> None:
        """Every outcome, and every delivery done, in one transaction."""
        if not done:
            return
        now = self._clock()
        async with self._sessions() as session:
            await _store_messages(session, [stored for _, stored in done])
            await session.exec(
                update(DeliveryRow)
                .where(among(col(DeliveryRow.id), [job.delivery.id for job, _ in done]))
                .values(status=DeliveryStatus.DONE, last_error=None, done_at=now, claimed_by=None)
                .execution_options(synchronize_session=False)  # no row of it in this session
            )
            await session.commit()


async def _store_messages(session: AsyncSession, outcomes: Sequence[Stored]) -> None:
    """New messages in one executemany; edited versions in one UPDATE per version shown; new
    threads in one executemany."""
    new = [o.new_message for o in outcomes if o.new_message is not None]
    if new:
        await session.exec(insert(MESSAGES), params=new)
    versions: dict[int, list[int]] = defaultdict(list)
    for o in outcomes:
        if o.message_row is not None and o.rendered_version is not None:
            versions[o.rendered_version].append(o.message_row)
    for version, rows in versions.items():  # max(stored, shown), as `process` keeps it
        await session.exec(
            update(AlertMessageRow)
            .where(
                col(AlertMessageRow.id).in_(rows), col(AlertMessageRow.rendered_version) < version
            )
            .values(rendered_version=version)
        )
    threads = [
        {"row": o.message_row, "thread": o.thread_id}
        for o in outcomes
        if o.message_row is not None and o.thread_id is not None
    ]
    if threads:
        await session.exec(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("row"))
            .values(thread_id=bindparam("thread")),
            params=threads,
        )


async def _mark_sending(session: AsyncSession, ids: Sequence[int], owner: int | None) -> set[int]:
    """Mark these deliveries ``sending`` (an attempt counted) if still pending and ours, and
    commit: the exactly-once rule's step before any network call. Returns those marked."""
    result = await session.exec(
        update(DeliveryRow)
        .where(
            among(col(DeliveryRow.id), ids),
            col(DeliveryRow.status) == DeliveryStatus.PENDING,
            col(DeliveryRow.claimed_by).is_not_distinct_from(owner),
        )
        .values(status=DeliveryStatus.SENDING, attempts=col(DeliveryRow.attempts) + 1)
        .returning(col(DeliveryRow.id))
        .execution_options(synchronize_session=False)  # no row of it in this session
    )
    marked = {int(row[0]) for row in result.all()}
    await session.commit()
    return marked


def chat_senders(
    senders: Mapping[str, PlatformSender | AlertDataSender],
) -> dict[str, PlatformSender]:
    """The chat platforms' senders (machine receivers always go one by one)."""
    return {
        platform: sender
        for platform, sender in senders.items()
        if not isinstance(sender, AlertDataSender)
    }


def first_attempt(delivery: RoundDelivery, subscription: Subscribed | None) -> bool:
    """Never tried yet, in an enabled channel: what the fast lane may take."""
    untried = delivery.attempts == 0 and delivery.status == DeliveryStatus.PENDING
    return untried and subscription is not None and subscription.enabled
