"""The outbox worker's fast lane (`bot.delivery.fast_lane`): a fan-out's first posts, edits and
thread replies are marked, sent and stored per wave, not per delivery, with the same outcomes
as one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.core.timeutil import system_clock
from bot.delivery.round_delivery import Tried
from bot.delivery.sender import TransientDeliveryError
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.store import alert_store, catalog_store
from bot.store.engine import session_factory
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow
from tests.fakes.outbox_child import CATALOG, opened, updated
from tests.fakes.recording_sender import RecordingSender

NOW = datetime.now(UTC)


async def stage(engine: AsyncEngine, channels: int) -> None:
    """`channels` channels follow svc; one incident opens (one post each)."""
    async with session_factory(engine)() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        session.add_all(
            SubscriptionRow(
                platform="test",
                community_id=f"g{n % 7}",
                channel_id=f"c{n}",
                service_id="svc",
                created_at=NOW,
            )
            for n in range(channels)
        )
        await session.commit()
        await alert_store.record_alert_events(session=session, events=[opened(NOW)], now=NOW)
        await session.commit()


def worker(engine: AsyncEngine, sender: RecordingSender) -> OutboxWorker:
    return OutboxWorker(
        sessions=session_factory(engine),
        senders={"test": sender},
        catalog=CATALOG,
        clock=system_clock,
        config=WorkerConfig(batch=200, base_backoff=0.0),
    )


async def test_a_round_of_first_posts_costs_a_few_statements_not_a_few_per_post(
    engine: AsyncEngine,
) -> None:
    await stage(engine, 150)
    statements: Counter[str] = Counter()

    def count(*args: object) -> None:
        statements[str(args[2]).split()[0]] += 1

    sender = RecordingSender()
    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        handled = await worker(engine, sender).run_once()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert handled == 150
    assert Counter(c.channel.channel_id for c in sender.calls) == {f"c{n}": 1 for n in range(150)}
    # Claim and load, the round's alert view, one UPDATE to "sending", one executemany of the
    # messages and one UPDATE to "done": one by one, it was about ten per delivery.
    assert sum(statements.values()) <= 20, statements
    async with session_factory(engine)() as session:
        deliveries = (await session.exec(select(DeliveryRow))).all()
        messages = (await session.exec(select(AlertMessageRow))).all()
    assert {(d.status, d.attempts, d.claimed_by) for d in deliveries} == {("done", 1, None)}
    assert all(d.done_at is not None for d in deliveries)
    assert len(messages) == 150
    assert {m.message_id for m in messages} == {c.message_id for c in sender.calls}


async def test_a_failed_post_in_the_batch_is_retried_later_and_the_others_are_done(
    engine: AsyncEngine,
) -> None:
    await stage(engine, 20)
    sender = RecordingSender()
    sender.fail_next(TransientDeliveryError("HTTP 503"))
    outbox = worker(engine, sender)
    assert await outbox.run_once() == 20
    async with session_factory(engine)() as session:
        statuses = Counter(d.status for d in (await session.exec(select(DeliveryRow))).all())
    assert statuses == {"done": 19, "pending": 1}
    await outbox.run_once()  # the retry was a first attempt: it looks with find_sent first
    async with session_factory(engine)() as session:
        rows = (await session.exec(select(DeliveryRow))).all()
        messages = (await session.exec(select(AlertMessageRow))).all()
    assert {d.status for d in rows} == {"done"}
    assert len(messages) == 20
    assert len([c for c in sender.calls if c.action == "send"]) == 20


async def test_the_outcome_hook_sees_each_post_as_stored(engine: AsyncEngine) -> None:
    """What the hook is told of each delivery is what the wave stored (metrics and webhooks
    read it)."""
    await stage(engine, 5)
    told: list[tuple[str, int | None, str, int, str | None]] = []

    async def hook(delivery: Tried, outcome: str) -> None:
        told.append((outcome, delivery.id, delivery.status, delivery.attempts, delivery.last_error))

    outbox = worker(engine, RecordingSender())
    outbox.on_outcome = hook
    assert await outbox.run_once() == 5
    async with session_factory(engine)() as session:
        rows = (await session.exec(select(DeliveryRow).order_by(col(DeliveryRow.id)))).all()
    assert told == [("done", r.id, r.status, r.attempts, r.last_error) for r in rows]
    assert {(r.status, r.attempts, r.last_error) for r in rows} == {("done", 1, None)}


async def stage_update(engine: AsyncEngine) -> None:
    """The incident `stage` opened is updated: an edit and a thread reply per channel."""
    async with session_factory(engine)() as session:
        await alert_store.record_alert_events(session=session, events=[updated(NOW)], now=NOW)
        await session.commit()


async def test_a_round_of_edits_and_replies_costs_a_few_statements_not_a_few_per_delivery(
    engine: AsyncEngine,
) -> None:
    await stage(engine, 100)
    sender = RecordingSender()
    outbox = worker(engine, sender)
    assert await outbox.run_once() == 100
    await stage_update(engine)
    statements: Counter[str] = Counter()

    def count(*args: object) -> None:
        statements[str(args[2]).split()[0]] += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        handled = await outbox.run_once()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert handled == 200  # the batch: a round
    actions = Counter(sender.actions()[100:])
    assert actions == {(a, f"c{n}"): 1 for n in range(100) for a in ("edit", "thread")}
    # Claim and load; per wave (the edits, then the replies) its loads, the alert's view, one
    # UPDATE to "sending" and one transaction storing the outcomes: one by one, 2,000 or so.
    assert sum(statements.values()) <= 40, statements
    async with session_factory(engine)() as session:
        deliveries = (await session.exec(select(DeliveryRow))).all()
        messages = (await session.exec(select(AlertMessageRow))).all()
        alert = (await session.exec(select(AlertRow))).one()
    assert {(d.status, d.attempts, d.claimed_by) for d in deliveries} == {("done", 1, None)}
    assert {m.rendered_version for m in messages} == {alert.version}
    assert all(m.thread_id == m.message_id for m in messages)  # the thread each reply started


def crash_on(engine: AsyncEngine, statement: str) -> Callable[..., None]:
    """A listener that fails the first statement starting with `statement` (the database gone
    in the middle of storing a wave), and only that one."""
    crashed: list[str] = []

    def crash(*args: object) -> None:
        if not crashed and str(args[2]).startswith(statement):
            crashed.append(statement)
            raise ConnectionResetError("database gone")

    event.listen(engine.sync_engine, "before_cursor_execute", crash)
    return crash


@pytest.mark.parametrize(
    "crash_at",
    ["UPDATE alert_messages SET rendered_version", "UPDATE alert_messages SET thread_id"],
)
async def test_a_crash_between_marking_and_storing_edits_and_replies_sends_no_reply_twice(
    engine: AsyncEngine, crash_at: str
) -> None:
    await stage(engine, 20)
    sender = RecordingSender()
    assert await worker(engine, sender).run_once() == 20
    await stage_update(engine)
    crash = crash_on(engine, crash_at)
    try:
        with pytest.raises(ConnectionResetError):
            await worker(engine, sender).run_once()
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", crash)
    async with session_factory(engine)() as session:
        left = Counter(d.status for d in (await session.exec(select(DeliveryRow))).all())
    assert left["sending"] == 20  # the wave whose outcomes were lost, an attempt counted
    restarted = worker(engine, sender)
    await restarted.recover()
    while await restarted.run_once():
        pass
    async with session_factory(engine)() as session:
        deliveries = (await session.exec(select(DeliveryRow))).all()
        messages = (await session.exec(select(AlertMessageRow))).all()
        alert = (await session.exec(select(AlertRow))).one()
    assert {d.status for d in deliveries} == {"done"}
    replies = Counter(c.channel.channel_id for c in sender.calls if c.action == "thread")
    assert replies == {f"c{n}": 1 for n in range(20)}  # looked for in the thread, not resent
    edits = Counter(c.channel.channel_id for c in sender.calls if c.action == "edit")
    # An edit whose outcome was lost is made again, as one by one: it rewrites the same message.
    times = 2 if "rendered_version" in crash_at else 1
    assert edits == {f"c{n}": times for n in range(20)}
    assert {m.rendered_version for m in messages} == {alert.version}
    assert all(m.thread_id == m.message_id for m in messages)
