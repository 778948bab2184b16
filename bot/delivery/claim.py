"""Sharing one outbox between worker processes (PostgreSQL).

Each worker process holds an advisory lock whose key is its *owner* number, on a dedicated
connection that also LISTENs for new deliveries. It claims due rows with ``FOR UPDATE SKIP
LOCKED`` by writing its owner number into ``claimed_by``, so two workers never take the same
row. A claim outlives nothing: when a worker dies its connection closes, its lock disappears from
``pg_locks``, and the next round of any worker puts its rows back in the queue (the ones it was
sending are then checked with `find_sent` before sending again).

Routing: a worker claims only the platforms it has senders for and, for Discord, the guilds of
the shards it runs (``(guild_id >> 22) % shard_count``, as Discord assigns them).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, cast, false, literal_column, or_, text, update
from sqlalchemy import select as core_select
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.outbox import DeliveryStatus
from bot.delivery.round_delivery import ROUND_DELIVERY_COLUMNS, RoundDelivery
from bot.delivery.round_subscription import RoundSubscription
from bot.store.engine import OUTBOX_CHANNEL
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.pg_connection import Connect
from bot.store.pg_driver import CONNECTION_ERRORS

log = logging.getLogger(__name__)

SUBSCRIPTIONS = SubscriptionRow.__table__  # type: ignore[attr-defined]
"""The subscriptions table, for plain (not ORM) reads of a round's rows."""

OWNER_LOCK_CLASS = 0x0B07
"""First key of the two-key advisory locks that mark live workers (the second is the owner)."""
_LOST: tuple[type[BaseException], ...] = (OSError, TimeoutError, *CONNECTION_ERRORS)
_LOST_OR_CANCELLED: tuple[type[BaseException], ...] = (*_LOST, asyncio.CancelledError)


@dataclass(frozen=True, slots=True)
class ShardRoute:
    """The Discord shards this process runs."""

    shard_ids: tuple[int, ...]
    shard_count: int


def route_filter(platforms: Sequence[str], shards: ShardRoute | None) -> ColumnElement[bool]:
    """Deliveries this worker may send: its platforms, and its shards' guilds on Discord."""
    if not platforms:
        return false()
    mine = col(DeliveryRow.platform).in_(list(platforms))
    if shards is None or "discord" not in platforms:
        return mine
    guild = cast(col(SubscriptionRow.community_id), BigInteger)
    in_my_shards = select(SubscriptionRow.id).where(
        SubscriptionRow.platform == "discord",
        # A literal, not a parameter: PostgreSQL has bigint >> int but not bigint >> bigint.
        (guild.op(">>")(literal_column("22")) % shards.shard_count).in_(list(shards.shard_ids)),
    )
    return mine & or_(
        col(DeliveryRow.platform) != "discord", col(DeliveryRow.subscription_id).in_(in_my_shards)
    )


@dataclass(frozen=True, slots=True)
class DueRound:
    """A round's deliveries, oldest first, and the subscriptions of their channels by id (a
    delivery whose subscription is gone has none)."""

    deliveries: list[RoundDelivery]
    subscriptions: dict[int, RoundSubscription]


_SUBSCRIPTION_COLUMNS = [
    getattr(SUBSCRIPTIONS.c, field.name) for field in dataclasses.fields(RoundSubscription)
]
_WIDTH = len(ROUND_DELIVERY_COLUMNS)


def _picked(route: ColumnElement[bool], now: datetime, limit: int) -> Any:
    """The ids of up to ``limit`` due, unclaimed deliveries, locked; rows another worker is
    claiming at this instant are skipped, not waited for."""
    return (
        select(DeliveryRow.id)
        .where(
            DeliveryRow.status == DeliveryStatus.PENDING,
            col(DeliveryRow.next_attempt_at) <= now,
            col(DeliveryRow.claimed_by).is_(None),
            route,
        )
        .order_by(col(DeliveryRow.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=DeliveryRow)
    )


def _claim(owner: int, route: ColumnElement[bool], now: datetime, limit: int) -> Any:
    """UPDATE marking the picked deliveries as ``owner``'s, returning them as a round reads
    them."""
    return (
        update(DeliveryRow)
        .where(col(DeliveryRow.id).in_(_picked(route, now, limit).scalar_subquery()))
        .values(claimed_by=owner)
        .returning(*ROUND_DELIVERY_COLUMNS)
    )


async def claim_due(
    session: AsyncSession,
    *,
    owner: int,
    route: ColumnElement[bool],
    now: datetime,
    limit: int,
) -> DueRound:
    """Mark up to ``limit`` due, unclaimed deliveries as ours and commit; returns them, with
    their subscriptions, in one statement (the UPDATE's RETURNING joined to the subscriptions)."""
    return await _with_subscriptions(session, _claim(owner, route, now, limit).cte("claimed"))


async def due_deliveries(
    sessions: async_sessionmaker[AsyncSession],
    *,
    owner: int | None,
    platforms: Sequence[str],
    shards: ShardRoute | None,
    now: datetime,
    limit: int,
) -> DueRound:
    """Due deliveries for a worker, oldest first, with their subscriptions, in one statement:
    with no ``owner`` (the only worker) every due one it can send; otherwise those it claims
    now (PostgreSQL), after taking back those of dead workers."""
    route = route_filter(platforms, shards)
    async with sessions() as session:
        if owner is not None:
            await release_orphans(session)
            return await claim_due(session, owner=owner, route=route, now=now, limit=limit)
        due = (
            core_select(*ROUND_DELIVERY_COLUMNS)
            .where(
                col(DeliveryRow.status) == DeliveryStatus.PENDING,
                col(DeliveryRow.next_attempt_at) <= now,
                route,
            )
            .order_by(col(DeliveryRow.id))
            .limit(limit)
            .subquery("due")
        )
        return await _with_subscriptions(session, due)


async def _with_subscriptions(session: AsyncSession, due: Any) -> DueRound:
    """The rows of ``due`` (a subquery or CTE of `ROUND_DELIVERY_COLUMNS`) joined to their
    subscriptions, read and committed (the claim, when ``due`` is one)."""
    query = (
        core_select(due, *_SUBSCRIPTION_COLUMNS)
        .select_from(due.outerjoin(SUBSCRIPTIONS, SUBSCRIPTIONS.c.id == due.c.subscription_id))
        .order_by(due.c.id)
    )
    rows = (await (await session.connection()).execute(query)).all()
    await session.commit()
    deliveries, subscriptions = [], {}
    for row in rows:
        deliveries.append(RoundDelivery(*row[:_WIDTH]))
        if row[_WIDTH] is not None:
            subscription = RoundSubscription(*row[_WIDTH:])
            subscriptions[subscription.id or 0] = subscription
    return DueRound(deliveries, subscriptions)


INTERRUPTED = "interrupted; checking before resending"
"""The note on a delivery put back after it was left ``sending``: the next attempt looks first."""

_RELEASE_ORPHANS = text(
    """
    UPDATE deliveries SET
        claimed_by = NULL,
        status = :pending,
        last_error = CASE WHEN status = :sending THEN :interrupted ELSE last_error END
    WHERE claimed_by IS NOT NULL
      AND status IN (:pending, :sending)
      AND NOT EXISTS (
        SELECT 1 FROM pg_locks AS l
        WHERE l.locktype = 'advisory'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::bigint = :lock_class
          AND l.objid::bigint = deliveries.claimed_by
          AND l.objsubid = 2
          AND l.granted)
    """
)

_RELEASE_PARAMS = {
    "lock_class": OWNER_LOCK_CLASS,
    "pending": DeliveryStatus.PENDING.value,
    "sending": DeliveryStatus.SENDING.value,
    "interrupted": INTERRUPTED,
}


async def release_orphans(session: AsyncSession) -> int:
    """Put back the deliveries of workers that are gone (their owner lock is free)."""
    result: Any = await session.exec(_RELEASE_ORPHANS, params=_RELEASE_PARAMS)  # type: ignore[call-overload]
    await session.commit()
    released = int(result.rowcount or 0)
    if released:
        log.info("outbox: took back %s deliveries from a worker that stopped", released)
    return released


class OutboxLink:
    """This worker's identity (a held owner lock) and its wake-ups (LISTEN), on one connection."""

    def __init__(self, connect: Connect, *, timeout: float = 5.0) -> None:
        self._connect = connect
        self._timeout = timeout
        self._connection: Any = None
        self._owner: int | None = None
        self._listeners: list[Callable[[], None]] = []
        self._unreachable_logged = False

    def subscribe(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever a transaction that staged deliveries commits."""
        self._listeners.append(wake)

    async def ensure(self) -> int | None:
        """This worker's owner number, reconnecting when the connection was lost (with a new
        number: the old one's claims are released by whoever looks next). None: unreachable."""
        if self._connection is not None and not self._connection.is_closed():
            return self._owner
        self._drop()
        try:
            connection = await asyncio.wait_for(self._connect(), self._timeout)
        except _LOST as exc:
            if not self._unreachable_logged:
                log.warning("outbox: database unreachable (%s); retrying", exc)
                self._unreachable_logged = True
            return None
        self._unreachable_logged = False
        try:
            owner = await self._take_owner(connection)
            await connection.add_listener(OUTBOX_CHANNEL, self._notified)
        except _LOST as exc:
            connection.terminate()
            log.warning("outbox: could not register this worker (%s); retrying", exc)
            return None
        self._connection, self._owner = connection, owner
        # Whatever was committed while we were not listening is found by this round's claim.
        self._notified()
        return owner

    async def close(self) -> None:
        """Free the owner lock and stop listening."""
        connection, self._connection, self._owner = self._connection, None, None
        if connection is not None and not connection.is_closed():
            try:
                await asyncio.wait_for(connection.close(), self._timeout)
            except _LOST_OR_CANCELLED:
                connection.terminate()

    async def _take_owner(self, connection: Any) -> int:
        while True:  # a random number is almost surely free; the lock proves it
            owner = secrets.randbelow(2**31 - 2) + 1
            query = "SELECT pg_try_advisory_lock($1, $2)"
            if await asyncio.wait_for(
                connection.fetchval(query, OWNER_LOCK_CLASS, owner), self._timeout
            ):
                return owner

    def _notified(self, *_args: object) -> None:
        for wake in self._listeners:
            wake()

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._connection, self._owner = None, None
