"""Early warnings: unofficial alerts that link to the official incident, or fade, in place."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.crowd import CrowdLevel
from bot.core.early_warning import CrowdReading
from bot.core.events import DetectionEvent, EventKind
from bot.core.rich import to_plain
from bot.delivery.worker import OutboxWorker
from bot.sources.catalog import parse_catalog
from bot.store import alert_store, catalog_store, subscription_store, warning_store
from bot.store.crowd_models import EarlyWarningRow
from bot.store.engine import session_factory
from bot.store.subscription_store import Scope
from bot.testing import TestAdapter
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai",
                "name": "OpenAI API",
                "provider": "OpenAI",
                "source": [{"kind": "feed", "url": "https://o/f"}],
            }
        ]
    }
)


def reading(level: CrowdLevel, clock: FakeClock, reports: int = 38) -> CrowdReading:
    return CrowdReading(
        level=level,
        reports=reports,
        reporters=30,
        communities=6,
        ratio=9.0,
        first_report_at=clock.now - timedelta(minutes=4),
    )


async def setup(engine: AsyncEngine, clock: FakeClock) -> tuple[OutboxWorker, RecordingSender]:
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        for channel, early in (("warned", True), ("official-only", False)):
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope("test", "g"),
                channel_id=channel,
                service_id="openai",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=early,
                maintenance=True,
                now=clock.now,
            )
        await session.commit()
    sender = RecordingSender()
    return OutboxWorker(
        sessions=sessions, senders={"test": sender}, catalog=CATALOG, clock=clock
    ), sender


async def apply(
    engine: AsyncEngine, clock: FakeClock, worker: OutboxWorker, value: CrowdReading
) -> None:
    async with session_factory(engine)() as session:
        await warning_store.apply_reading(
            session=session, service_id="openai", reading=value, now=clock.now, official_open=False
        )
        await session.commit()
    await worker.run_once()


async def test_warning_then_confirmation_with_lead_time(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    worker, sender = await setup(engine, clock)
    await apply(engine, clock, worker, reading(CrowdLevel.POSSIBLE, clock))
    (post,) = sender.calls
    assert post.channel.channel_id == "warned"  # only channels that asked for early warnings
    text = to_plain(post.reply.body, clock.now)
    assert text.startswith("Possible outage (unconfirmed): 38 reports in 10 min from 30 people")
    assert "in 6 communities (9× usual)" in text
    assert "official status page still says unknown" in text
    assert post.reply.footer
    assert "Unofficial" in to_plain(post.reply.footer, clock.now)

    clock.advance(minutes=3)
    await apply(engine, clock, worker, reading(CrowdLevel.REPORTED, clock, reports=80))
    assert [c.action for c in sender.calls] == ["send", "edit"]

    clock.advance(minutes=7)  # the provider admits it: 14 minutes after the first report
    official = DetectionEvent(
        kind=EventKind.INCIDENT_OPENED,
        service_id="openai",
        at=clock.now,
        key="opened",
        incident_id="inc-1",
        title="Elevated error rates",
        detail={
            "status": "investigating",
            "impact": "major",
            "url": "https://status.openai.com/incidents/1",
            "update_body": "Investigating",
            "started_at": clock.now.isoformat(),
        },
    )
    async with session_factory(engine)() as session:
        await alert_store.record_alert_events(session=session, events=[official], now=clock.now)
        await session.commit()
    await worker.run_once()
    edits = [c for c in sender.calls if c.action == "edit" and c.channel.channel_id == "warned"]
    confirmed = edits[-1].reply
    assert confirmed.title == "✔️ OpenAI API: outage confirmed"
    assert to_plain(confirmed.body, clock.now).startswith(
        "Confirmed by OpenAI 14 min after the first reports"
    )
    # The official incident gets its own alert in both channels.
    assert {c.channel.channel_id for c in sender.calls if c.action == "send"} == {
        "warned",
        "official-only",
    }
    async with session_factory(engine)() as session:
        (row,) = (await session.exec(select(EarlyWarningRow))).all()
    assert (row.outcome, row.lead_seconds) == ("confirmed", 14 * 60)


async def test_warning_that_fades(engine: AsyncEngine, clock: FakeClock) -> None:
    worker, sender = await setup(engine, clock)
    await apply(engine, clock, worker, reading(CrowdLevel.POSSIBLE, clock))
    clock.advance(minutes=21)
    await apply(engine, clock, worker, reading(CrowdLevel.NONE, clock))
    final = sender.calls[-1]
    assert final.action == "edit"
    assert "Reports returned to normal after 25 min" in to_plain(final.reply.body, clock.now)
    # A later surge opens a new warning, a new message.
    clock.advance(hours=2)
    await apply(engine, clock, worker, reading(CrowdLevel.POSSIBLE, clock))
    assert [c.action for c in sender.calls].count("send") == 2


async def test_no_warning_while_the_official_incident_is_open(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    worker, sender = await setup(engine, clock)
    async with session_factory(engine)() as session:
        staged = await warning_store.apply_reading(
            session=session,
            service_id="openai",
            reading=reading(CrowdLevel.WIDESPREAD, clock),
            now=clock.now,
            official_open=True,
        )
        await session.commit()
    assert staged == 0
    await worker.run_once()
    assert sender.calls == []


async def test_no_warning_without_anyone_reporting(engine: AsyncEngine, clock: FakeClock) -> None:
    # A level that lingers after its reports left the window must not warn "0 reports from 0".
    worker, sender = await setup(engine, clock)
    lingering = replace(reading(CrowdLevel.POSSIBLE, clock, reports=0), reporters=0, communities=0)
    await apply(engine, clock, worker, lingering)
    assert sender.calls == []
    async with session_factory(engine)() as session:
        assert await warning_store.open_warning(session=session, service_id="openai") is None


async def test_history_tells_the_lead_time(engine: AsyncEngine, clock: FakeClock) -> None:
    from bot.core.commands import CommandRegistry
    from bot.services.deps import AppDeps
    from cogs import load_cogs

    worker, _ = await setup(engine, clock)
    await apply(engine, clock, worker, reading(CrowdLevel.POSSIBLE, clock))
    clock.advance(minutes=10)
    async with session_factory(engine)() as session:
        await warning_store.confirm(
            session=session,
            service_id="openai",
            incident_id="inc-9",
            incident_title="Errors",
            incident_url=None,
            started_at=clock.now,
            now=clock.now,
        )
        await session.commit()
    deps = AppDeps(
        catalog=CATALOG, sessions=session_factory(engine), registry=load_cogs(CommandRegistry())
    )
    reply = await TestAdapter.of(deps, clock, user="u", community="g").run("history openai")
    assert "Early warnings: 1 confirmed, a median of 14 min before the official page." in to_plain(
        reply.body, clock.now
    )
