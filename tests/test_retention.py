"""Retention: old reports and finished deliveries go, in batches; incident history and anything
an open incident or the crowd baseline still needs stays."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.store import alert_store, catalog_store
from bot.store.crowd_models import ReportRow
from bot.store.engine import session_factory
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow
from bot.store.retention import REPORT_FLOOR_DAYS, RetentionJob, RetentionPolicy, prune
from tests.conftest import FakeClock
from tests.fakes.outbox_child import CATALOG, opened


async def count(engine: AsyncEngine, table: type) -> int:
    async with session_factory(engine)() as session:
        return int((await session.exec(select(func.count()).select_from(table))).one())


async def add_reports(engine: AsyncEngine, clock: FakeClock, ages_days: list[float]) -> None:
    async with session_factory(engine)() as session:
        session.add_all(
            ReportRow(
                service_id="svc",
                what="down",
                reporter_hash=f"user{index}",
                platform="discord",
                community_id="g",
                at=clock() - timedelta(days=age),
            )
            for index, age in enumerate(ages_days)
        )
        await session.commit()


async def add_incident(
    engine: AsyncEngine, clock: FakeClock, key: str, *, done_days_ago: float, resolved: bool
) -> int:
    """An incident posted to 3 channels `done_days_ago`; resolved then too, or still open."""
    sessions = session_factory(engine)
    then = clock() - timedelta(days=done_days_ago)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        if not (await session.exec(select(SubscriptionRow))).first():
            session.add_all(
                SubscriptionRow(
                    platform="discord",
                    community_id="g",
                    channel_id=f"c{n}",
                    service_id="svc",
                    created_at=then,
                )
                for n in range(3)
            )
            await session.flush()
        await alert_store.record_alert_events(session=session, events=[opened(then, key)], now=then)
        await session.commit()
        alert = await session.exec(select(AlertRow).where(AlertRow.subject_id == f"inc-{key}"))
        row = alert.one()
        deliveries = await session.exec(select(DeliveryRow).where(DeliveryRow.alert_id == row.id))
        for delivery in deliveries.all():
            delivery.status, delivery.done_at = "done", then
            session.add(delivery)
            message_id = f"m-{key}-{delivery.subscription_id}"
            session.add(
                AlertMessageRow(
                    alert_id=row.id or 0,
                    subscription_id=delivery.subscription_id,
                    message_id=message_id,
                )
            )
        if resolved:
            row.resolved_at = then
            session.add(row)
        await session.commit()
        return row.id or 0


async def test_old_reports_go_in_batches_and_the_crowd_baseline_floor_is_kept(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    await add_reports(engine, clock, [0.1, 3, 7.5, 9, 20, 31, 40, 45, 60, 90])
    sessions = session_factory(engine)
    pruned = await prune(
        sessions=sessions, policy=RetentionPolicy(report_days=30, batch=2), now=clock()
    )
    assert pruned.reports == 5  # 31, 40, 45, 60 and 90 days old, three batches
    assert await count(engine, ReportRow) == 5
    # Asking for less than the floor keeps the floor: the detector learns from the past week.
    pruned = await prune(sessions=sessions, policy=RetentionPolicy(report_days=1), now=clock())
    assert pruned.reports == 2  # 9 and 20 days old
    async with sessions() as session:
        ages = sorted((clock() - r.at).days for r in (await session.exec(select(ReportRow))).all())
    assert ages == [0, 3, 7]
    assert max(ages) < REPORT_FLOOR_DAYS


async def test_finished_deliveries_of_long_resolved_incidents_go_and_history_stays(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    old = await add_incident(engine, clock, "old", done_days_ago=30, resolved=True)
    await add_incident(engine, clock, "recent", done_days_ago=3, resolved=True)
    await add_incident(engine, clock, "long-open", done_days_ago=30, resolved=False)
    assert await count(engine, DeliveryRow) == 9
    job = RetentionJob(
        sessions=session_factory(engine),
        policy=RetentionPolicy(delivery_days=14, batch=2),
        clock=clock,
    )
    pruned = await job.run()
    assert pruned is not None
    assert pruned.deliveries == 3
    async with session_factory(engine)() as session:
        left = (await session.exec(select(DeliveryRow.alert_id))).all()
    assert old not in left
    assert len(left) == 6
    # Incident history: every alert and every message it posted.
    assert await count(engine, AlertRow) == 3
    assert await count(engine, AlertMessageRow) == 9
    clock.advance(days=30)  # later, the recent one has aged too; the open one stays
    pruned = await job.run()
    assert pruned is not None
    assert pruned.deliveries == 3


async def test_the_open_incident_keeps_its_post_so_its_next_update_edits_it(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    await add_incident(engine, clock, "long-open", done_days_ago=60, resolved=False)
    await prune(sessions=session_factory(engine), policy=RetentionPolicy(), now=clock())
    async with session_factory(engine)() as session:
        staged = await alert_store.record_alert_events(
            session=session, events=[opened(clock(), "long-open")], now=clock()
        )
        await session.commit()
        actions = (await session.exec(select(DeliveryRow.action))).all()
    assert staged == 3
    assert sorted(actions).count("post") == 3  # the original posts only: no second post
