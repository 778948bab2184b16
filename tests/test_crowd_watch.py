"""Reports through /report → the crowd detector → an early warning in a subscribed channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.core import crowd
from bot.core.commands import CommandRegistry
from bot.core.crowd_codec import decode_crowd_memory, encode_crowd_memory
from bot.core.rich import to_plain
from bot.core.service_state import ServiceState
from bot.core.status import Incident
from bot.delivery.worker import OutboxWorker
from bot.services.crowd_watch import CrowdWatch
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog
from bot.store import (
    catalog_store,
    detection_store,
    service_state_store,
    source_store,
    subscription_store,
)
from bot.store.crowd_models import CrowdMemoryRow
from bot.store.engine import session_factory
from bot.store.subscription_store import Scope
from bot.testing import TestAdapter
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.helpers import catalog_for, settle, snapshot


async def watched_with_a_learned_week(
    sessions: async_sessionmaker[AsyncSession],
    catalog: Catalog,
    memory: crowd.CrowdMemory,
    clock: FakeClock,
) -> None:
    """OpenAI in the catalog, its detector's learned week stored, and a channel that wants early
    warnings."""
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
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


async def six_report_openai(deps: AppDeps, clock: FakeClock, minute: int) -> None:
    """Six new people in six communities /report OpenAI this minute."""
    bot = TestAdapter.of(deps, clock)
    for user in range(6):
        await bot.invoke(
            "report",
            {"service": "openai", "what": "errors"},
            user=f"u{minute}-{user}",
            community=f"g{user}",
        )


async def test_a_surge_of_reports_raises_an_early_warning_then_fades(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    config = crowd.CrowdConfig()
    week = [(clock.now - timedelta(hours=h), 1) for h in range(24 * 7, 0, -1)]  # one report an hour
    memory = crowd.learn_history(crowd.CrowdMemory(), week, config=config)
    await watched_with_a_learned_week(sessions, catalog, memory, clock)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    sender = RecordingSender()
    worker = OutboxWorker(sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock)
    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, config=config)

    await watch.tick()
    assert sender.calls == []  # calm: nothing to say
    for minute in range(8):
        await six_report_openai(deps, clock, minute)
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


async def test_reports_during_an_official_incident_open_no_warning_after_it_resolves(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    url = "https://status.openai.com/api/v2/summary.json"
    catalog = catalog_for({"openai": url})
    sessions = session_factory(engine)
    config = crowd.CrowdConfig()
    week = [(clock.now - timedelta(hours=h), 1) for h in range(24 * 7, 0, -1)]
    memory = crowd.learn_history(crowd.CrowdMemory(), week, config=config)
    outage = Incident(
        id="inc-1",
        name="Elevated errors",
        status="investigating",
        impact="major",
        started_at=clock.now,
        resolved_at=None,
        url=None,
    )

    async def official(incident: Incident, state: ServiceState) -> None:
        async with sessions() as session:  # what a poll of the page stores
            source = await source_store.get_source(session=session, url=url)
            assert source is not None
            assert source.id is not None
            await source_store.record_snapshot(
                session=session,
                source=source,
                snapshot=snapshot(incidents=(incident,)),
                etag=None,
                last_modified=None,
                now=clock.now,
            )
            await detection_store.link_incidents(
                session=session, service_id="openai", source_id=source.id, external_ids=["inc-1"]
            )
            await service_state_store.set_service_state(
                session=session, service_id="openai", state=state, now=clock.now
            )
            await session.commit()

    await watched_with_a_learned_week(sessions, catalog, memory, clock)
    await official(outage, ServiceState.MAJOR_OUTAGE)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    sender = RecordingSender()
    worker = OutboxWorker(sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock)
    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, config=config)
    for minute in range(8):  # the crowd confirms what the page already says
        await six_report_openai(deps, clock, minute)
        clock.advance(minutes=1)
        await watch.tick()
    clock.advance(minutes=4)  # the reports stop; the page resolves its incident
    resolved = Incident(
        id="inc-1",
        name="Elevated errors",
        status="resolved",
        impact="major",
        started_at=outage.started_at,
        resolved_at=clock.now,
        url=None,
    )
    await official(resolved, ServiceState.OPERATIONAL)
    for _ in range(30):  # while the crowd level falls back
        clock.advance(minutes=1)
        await watch.tick()
        await worker.run_once()
    assert sender.calls == []


async def test_a_new_detector_learns_the_stored_week(engine: AsyncEngine, clock: FakeClock) -> None:
    catalog = catalog_for({"openai": "https://status.openai.com/api/v2/summary.json"})
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
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
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        await session.commit()
    delays: list[float] = []
    delay_over = asyncio.Event()

    async def sleep(seconds: float) -> None:  # no wall-clock wait: the test ends the delay
        delays.append(seconds)
        await delay_over.wait()

    watch = CrowdWatch(sessions=sessions, catalog=catalog, clock=clock, sleep=sleep)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    deps.reports.counted.subscribe(watch.nudge)
    await watch.tick()  # the detector exists; its memory has seen no report
    for user in ("u1", "u2", "u1"):  # the repeat is not counted, so it asks for nothing
        await TestAdapter.of(deps, clock).invoke(
            "report", {"service": "openai"}, user=user, community="g"
        )
    watch.nudge("no-such-service")
    delay_over.set()
    await settle(watch)
    assert delays == [5.0]  # u1 and u2 shared one evaluation
    async with sessions() as session:
        row = await session.get(CrowdMemoryRow, "openai")
    assert row is not None
    memory = decode_crowd_memory(row.memory)
    assert len(memory.recent) == 2  # both reporters seen, before any tick
