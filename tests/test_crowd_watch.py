"""Reports through /report → the crowd detector → an early warning in a subscribed channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core import crowd
from bot.core.commands import Actor, CommandRegistry, Invocation, dispatch
from bot.core.crowd_codec import decode_crowd_memory, encode_crowd_memory
from bot.core.rich import to_plain
from bot.crowd_watch import NUDGE_KEY, CrowdWatch
from bot.delivery.worker import OutboxWorker
from bot.deps import AppDeps
from bot.store import repository, subscription_store
from bot.store.crowd_models import CrowdMemoryRow
from bot.store.engine import session_factory
from bot.store.subscription_store import Scope
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.helpers import catalog_for


async def test_a_surge_of_reports_raises_an_early_warning_then_fades(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    config = crowd.CrowdConfig()
    week = [(clock.now - timedelta(hours=h), 1) for h in range(24 * 7, 0, -1)]  # one report an hour
    memory = crowd.learn_history(crowd.CrowdMemory(), week, config=config)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
        session.add(
            CrowdMemoryRow(
                service_id="openai", memory=encode_crowd_memory(memory), updated_at=clock.now
            )
        )
        await subscription_store.upsert_subscription(
            session=session,
            scope=Scope("test", "g0"),
            channel_id="alerts",
            service_id="openai",
            components=(),
            min_severity="minor",
            mention_role=None,
            early_warnings=True,
            maintenance=True,
            now=clock.now,
        )
        await session.commit()
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    sender = RecordingSender()
    worker = OutboxWorker(sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock)
    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, config=config)

    await watch.tick()
    assert sender.calls == []  # calm: nothing to say
    for minute in range(8):
        for user in range(6):
            invocation = Invocation(
                command="report",
                options={"service": "openai", "what": "errors"},
                actor=Actor("test", f"u{minute}-{user}"),
                community_id=f"g{user}",
            )
            await dispatch(deps.registry, invocation, deps, clock.now)
        clock.advance(minutes=1)
        await watch.tick()
        await worker.run_once()
    assert [c.action for c in sender.calls][:1] == ["send"]
    warning = sender.calls[0].reply
    assert warning.title == "⚠️ Openai: users report problems"
    assert "Possible outage (unconfirmed)" in to_plain(warning.body, clock.now)

    clock.advance(hours=2)  # the reports stop
    for _ in range(3):
        await watch.tick()
        await worker.run_once()
        clock.advance(minutes=15)
    assert "Reports returned to normal" in to_plain(sender.calls[-1].reply.body, clock.now)


async def test_a_new_detector_learns_the_stored_week(engine: AsyncEngine, clock: FakeClock) -> None:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
        await session.commit()
    await CrowdWatch(sessions=sessions, catalog=catalog, clock=clock).tick()
    async with sessions() as session:
        row = await session.get(CrowdMemoryRow, "openai")
    assert row is not None
    assert decode_crowd_memory(row.memory).learned_hours >= 24 * 7  # watching from the first minute


async def test_a_counted_report_gets_its_service_evaluated_without_waiting_for_the_tick(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
        await session.commit()
    delays: list[float] = []
    delay_over = asyncio.Event()

    async def sleep(seconds: float) -> None:  # no wall-clock wait: the test ends the delay
        delays.append(seconds)
        await delay_over.wait()

    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, sleep=sleep)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    deps.cache[NUDGE_KEY] = watch.nudge
    await watch.tick()  # the detector exists; its memory has seen no report
    for user in ("u1", "u2", "u1"):  # the repeat is not counted, so it asks for nothing
        invocation = Invocation(
            command="report",
            options={"service": "openai"},
            actor=Actor("test", user),
            community_id="g",
        )
        await dispatch(deps.registry, invocation, deps, clock.now)
    watch.nudge("no-such-service")
    delay_over.set()
    await watch.settle()
    assert delays == [5.0]  # u1 and u2 shared one evaluation
    async with sessions() as session:
        row = await session.get(CrowdMemoryRow, "openai")
    assert row is not None
    memory = decode_crowd_memory(row.memory)
    assert len(memory.recent) == 2  # both reporters seen, before any tick
