"""Sharing the outbox: routing by platform and Discord shard, SKIP LOCKED claims, dead workers'
rows taken back, and LISTEN/NOTIFY wake-ups (PostgreSQL) — in one process; several processes
are in test_multiprocess.py."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.core.timeutil import system_clock
from bot.delivery.claim import (
    OutboxLink,
    ShardRoute,
    claim_due,
    due_deliveries,
    release_orphans,
)
from bot.delivery.claim import route_filter as route
from bot.delivery.round_delivery import RoundDelivery
from bot.delivery.round_subscription import RoundSubscription
from bot.delivery.worker import OutboxWorker
from bot.store import alert_store, catalog_store
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.pg_connection import asyncpg_connector
from tests.fakes.outbox_child import CATALOG, opened
from tests.fakes.recording_sender import RecordingSender

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
postgres_only = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def guild_on_shard(shard: int, count: int, n: int) -> str:
    """A Discord guild id (snowflake) that Discord puts on `shard` of `count`."""
    return str(((10**6 + n) * count + shard) << 22)


def discord_shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's own rule for which shard carries a guild (what `route_filter` asks in SQL)."""
    return (guild_id >> 22) % shard_count


async def stage(
    engine: AsyncEngine, places: list[tuple[str, str]], key: str = "opened", now: datetime = NOW
) -> None:
    """Subscribe (platform, community) channels to svc and stage one incident for them."""
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        existing = len((await session.exec(select(SubscriptionRow))).all())
        session.add_all(
            SubscriptionRow(
                platform=platform,
                community_id=community,
                channel_id=f"ch{existing + index}",
                service_id="svc",
                created_at=now,
            )
            for index, (platform, community) in enumerate(places)
        )
        await session.commit()
        await alert_store.record_alert_events(session=session, events=[opened(now, key)], now=now)
        await session.commit()


async def test_a_round_reads_its_deliveries_and_their_subscriptions_as_stored(
    engine: AsyncEngine,
) -> None:
    await stage(engine, [("slack", "T1"), ("discord", "G2"), ("fakechat", "g"), ("slack", "T3")])
    async with session_factory(engine)() as session:
        await session.exec(
            update(SubscriptionRow)
            .where(col(SubscriptionRow.community_id) == "G2")
            .values(enabled=False, alternatives=False, mention_role="role:7")
        )
        await session.exec(
            update(DeliveryRow)
            .where(col(DeliveryRow.platform) == "fakechat")
            .values(attempts=2, last_error="HTTP 502")
        )
        await session.commit()
        stored = {row.id: row for row in (await session.exec(select(SubscriptionRow))).all()}
        rows = {row.id or 0: row for row in (await session.exec(select(DeliveryRow))).all()}
    due = await due_deliveries(
        session_factory(engine),
        owner=None,
        platforms=["slack", "discord", "fakechat"],
        shards=None,
        now=NOW,
        limit=3,
    )

    def shown(row: object, fields: tuple[str, ...]) -> tuple[object, ...]:
        return tuple(getattr(row, name) for name in fields)

    delivery_fields = tuple(f.name for f in dataclasses.fields(RoundDelivery))
    assert [d.id for d in due.deliveries] == sorted(rows)[:3]  # oldest first, the batch's size
    assert [shown(d, delivery_fields) for d in due.deliveries] == [
        shown(rows[d.id], delivery_fields) for d in due.deliveries
    ]
    assert due.deliveries[2].attempts == 2
    assert due.deliveries[2].last_error == "HTTP 502"
    fields = tuple(f.name for f in dataclasses.fields(RoundSubscription))
    asked = {d.subscription_id for d in due.deliveries}
    assert set(due.subscriptions) == asked
    assert {shown(s, fields) for s in due.subscriptions.values()} == {
        shown(stored[i], fields) for i in asked
    }


async def test_a_worker_takes_only_its_platforms_and_its_discord_shards(
    engine: AsyncEngine,
) -> None:
    mine = [("discord", guild_on_shard(1, 4, n)) for n in range(3)]
    mine += [("discord", guild_on_shard(3, 4, n)) for n in range(2)] + [("slack", "T1")]
    others = [("discord", guild_on_shard(0, 4, n)) for n in range(3)] + [("fakechat", "g")]
    await stage(engine, mine + others)
    route_here = ShardRoute(shard_ids=(1, 3), shard_count=4)
    assert discord_shard_of(int(guild_on_shard(3, 4, 7)), route_here.shard_count) == 3
    due = await due_deliveries(
        session_factory(engine),
        owner=None,
        platforms=["discord", "slack"],
        shards=route_here,
        now=NOW,
        limit=100,
    )
    async with session_factory(engine)() as session:
        subs = {s.id: s for s in (await session.exec(select(SubscriptionRow))).all()}
    places = [
        (subs[d.subscription_id].platform, subs[d.subscription_id].community_id)
        for d in due.deliveries
    ]
    assert {s.id for s in due.subscriptions.values()} == {d.subscription_id for d in due.deliveries}
    assert sorted(places) == sorted(mine)
    # No shard list: every Discord guild; no senders: nothing at all.
    every = await due_deliveries(
        session_factory(engine), owner=None, platforms=["discord"], shards=None, now=NOW, limit=99
    )
    assert len(every.deliveries) == 8
    none = await due_deliveries(
        session_factory(engine), owner=None, platforms=[], shards=None, now=NOW, limit=99
    )
    assert none.deliveries == []
    assert none.subscriptions == {}


@postgres_only
async def test_concurrent_claims_never_share_a_delivery(engine: AsyncEngine) -> None:
    await stage(engine, [("fakechat", f"g{n % 5}") for n in range(300)])
    sessions = session_factory(engine)

    async def claimer(owner: int) -> list[int]:
        taken: list[int] = []
        while True:
            async with sessions() as session:
                batch = await claim_due(
                    session, owner=owner, route=route(["fakechat"], None), now=NOW, limit=7
                )
            if not batch.deliveries:
                return taken
            # Each claimed delivery comes with its channel's subscription, in the same statement.
            assert set(batch.subscriptions) == {d.subscription_id for d in batch.deliveries}
            taken += [delivery.id for delivery in batch.deliveries]

    claims = await asyncio.gather(*(claimer(owner) for owner in (11, 12, 13, 14)))
    everything = [i for batch in claims for i in batch]
    assert len(everything) == len(set(everything)) == 300
    assert all(claims), "some claimer got nothing: SKIP LOCKED should spread the work"
    async with sessions() as session:
        rows = (await session.exec(select(DeliveryRow))).all()
    owners = {row.id: row.claimed_by for row in rows}
    for owner, batch in zip((11, 12, 13, 14), claims, strict=True):
        assert {owners[i] for i in batch} == {owner}


@postgres_only
async def test_the_rows_of_a_worker_that_is_gone_go_back_to_the_queue(
    engine: AsyncEngine, postgres_url: str
) -> None:
    await stage(engine, [("fakechat", "g")] * 6)
    sessions = session_factory(engine)
    alive, dead = (
        OutboxLink(asyncpg_connector(postgres_url)),
        OutboxLink(asyncpg_connector(postgres_url)),
    )
    try:
        alive_owner, dead_owner = await alive.ensure(), await dead.ensure()
        assert alive_owner
        assert dead_owner
        assert alive_owner != dead_owner
        filter_ = route(["fakechat"], None)
        async with sessions() as session:
            claimed = await claim_due(session, owner=alive_owner, route=filter_, now=NOW, limit=3)
            kept = [delivery.id for delivery in claimed.deliveries]
        async with sessions() as session:
            claimed = await claim_due(session, owner=dead_owner, route=filter_, now=NOW, limit=3)
            lost = [delivery.id for delivery in claimed.deliveries]
            await session.exec(
                update(DeliveryRow).where(col(DeliveryRow.id) == lost[0]).values(status="sending")
            )
            await session.commit()
        async with sessions() as session:
            assert await release_orphans(session) == 0  # both alive: nothing to take
        await dead.close()  # as when its process dies: the connection and its lock go
        async with sessions() as session:
            assert await release_orphans(session) == 3
            rows = {r.id: r for r in (await session.exec(select(DeliveryRow))).all()}
        assert all(rows[i].claimed_by == alive_owner for i in kept)
        assert all(rows[i].claimed_by is None and rows[i].status == "pending" for i in lost)
        assert rows[lost[0]].last_error == "interrupted; checking before resending"
        assert rows[lost[1]].last_error is None
    finally:
        await alive.close()
        await dead.close()


@postgres_only
async def test_committed_deliveries_notify_listeners_and_nothing_else_does(
    engine: AsyncEngine, postgres_url: str
) -> None:
    link = OutboxLink(asyncpg_connector(postgres_url))
    heard = asyncio.Queue[str]()
    link.subscribe(lambda: heard.put_nowait("wake"))
    try:
        assert await link.ensure()
        await asyncio.wait_for(heard.get(), 5)  # a fresh link looks once for what it missed
        sessions = session_factory(engine)
        async with sessions() as session:  # a commit without deliveries
            await catalog_store.sync_catalog(session=session, catalog=CATALOG)
            await session.commit()
        async with sessions() as session:  # deliveries rolled back
            session.add(
                SubscriptionRow(
                    platform="x", community_id="g", channel_id="c", service_id="svc", created_at=NOW
                )
            )
            await session.commit()
            await alert_store.record_alert_events(session=session, events=[opened(NOW)], now=NOW)
            await session.rollback()
        await stage(engine, [("x", "g2")], key="second")  # deliveries committed
        await asyncio.wait_for(heard.get(), 5)
        assert heard.empty(), "notified for a commit that staged no delivery"
    finally:
        await link.close()


@postgres_only
async def test_a_notification_wakes_an_idle_worker_without_waiting_for_its_tick(
    engine: AsyncEngine, postgres_url: str
) -> None:
    sender = RecordingSender(platform="fakechat")
    worker = OutboxWorker(
        sessions=session_factory(engine),
        senders={"fakechat": sender},
        catalog=CATALOG,
        clock=system_clock,
        link=OutboxLink(asyncpg_connector(postgres_url)),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run_forever(stop, tick_seconds=3600))
    try:
        # Written by another session, as the poller does; due now on the worker's real clock.
        # Twice: the second batch arrives while the worker sits idle after the first.
        for wave, key in enumerate(("first", "second"), start=1):
            await stage(engine, [("fakechat", "g")] * 3, key=key, now=system_clock())
            async with asyncio.timeout(20):  # bounded: far below the hour-long tick
                await sender.wait_for_calls(3 * wave)
        # The second incident reaches all six channels: three new posts, three digest edits.
        async with asyncio.timeout(20):
            await sender.wait_for_calls(9)
        assert sorted(c.action for c in sender.calls) == ["edit"] * 3 + ["send"] * 6
    finally:
        stop.set()
        await task
