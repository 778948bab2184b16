"""Maintenance notices from a real Statuspage summary: per-component filters, and their end."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.events import DetectionEvent, EventKind
from bot.core.service_view import service_view
from bot.sources.fetch import new_http_session
from bot.sources.statuspage import parse_statuspage
from bot.store import alert_store, catalog_store, detection_store
from bot.store.engine import session_factory
from bot.store.models import AlertRow, DeliveryRow, SubscriptionRow
from bot.store.subscription_store import Scope
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import catalog_for, make_poller, subscribe

# Twilio's page on 2020-06-16: 73 components, 9 scheduled maintenances naming theirs.
TWILIO = json.loads(
    (
        Path(__file__).parent
        / "fixtures/statuspage/statuspage_summary_twilio_2020-06-16_incidents_and_maintenances.json"
    ).read_text(encoding="utf-8")
)
TELE2 = "9szb6ydlg10w"  # SMS, Europe
CHANNELS = {  # channel → its component filter
    "everything": (),
    "toll-free": ("SMS Toll-Free, North America",),
    "europe": ("SMS, Europe",),
}


async def record_alert_events(
    session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
) -> None:
    await alert_store.record_alert_events(session=session, events=events, now=now)


def page(maintenances: list[dict[str, object]]) -> dict[str, object]:
    return {**TWILIO, "incidents": [], "scheduled_maintenances": maintenances}


async def posts_by_channel(engine: AsyncEngine, action: str) -> Counter[str]:
    async with session_factory(engine)() as session:
        rows = (
            await session.exec(
                select(SubscriptionRow.channel_id)
                .join(DeliveryRow, col(DeliveryRow.subscription_id) == col(SubscriptionRow.id))
                .where(DeliveryRow.action == action)
            )
        ).all()
    return Counter(rows)


async def test_maintenance_follows_component_filters_and_ends_when_it_leaves_the_page(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
        url = server.url(SUMMARY_PATH)
        catalog = catalog_for({"twilio": url})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
            for channel, components in CHANNELS.items():
                scope = Scope("test", "g")
                await subscribe(session, scope, channel, "twilio", clock.now, components=components)
            await session.commit()
        poller = await make_poller(
            engine, clock, catalog, http, timeout=10, record_events=record_alert_events
        )

        async def poll(maintenances: list[dict[str, object]]) -> None:
            server.set_json(SUMMARY_PATH, page(maintenances))
            await poller.poll_all()
            clock.advance(minutes=1)

        await poll([])  # first look: nothing planned
        await poll(TWILIO["scheduled_maintenances"])  # nine windows announced
        assert await posts_by_channel(engine, "post") == {
            "everything": 9,
            "toll-free": 3,  # only the three toll-free windows
            "europe": 1,  # only Tele2 Russia
        }

        tele2 = next(m for m in TWILIO["scheduled_maintenances"] if m["id"] == TELE2)
        others = [m for m in TWILIO["scheduled_maintenances"] if m["id"] != TELE2]
        await poll([{**tele2, "status": "in_progress"}, *others])
        await poll(others)  # Tele2's window is over: Statuspage drops it from the summary
        await poll(others)  # and says nothing more about it

    async with sessions() as session:
        kinds = [
            e.kind
            for e in await detection_store.events_for(session=session, service_id="twilio")
            if e.incident_id == TELE2
        ]
        alert = (await session.exec(select(AlertRow).where(AlertRow.subject_id == TELE2))).one()
        still_open = (
            await session.exec(select(AlertRow).where(col(AlertRow.resolved_at).is_(None)))
        ).all()
    assert kinds == [
        EventKind.MAINTENANCE_SCHEDULED,
        EventKind.MAINTENANCE_STARTED,
        EventKind.MAINTENANCE_COMPLETED,
    ]
    assert (alert.status, alert.resolved_at is not None) == ("completed", True)
    assert len(still_open) == 8
    # The channels that got the notice see it end (its message edited); the others hear nothing.
    assert await posts_by_channel(engine, "edit") == {"everything": 2, "europe": 2}


def test_a_shared_page_gives_each_service_only_the_maintenance_of_its_components() -> None:
    whole = parse_statuspage(TWILIO)
    europe = service_view(whole, ["SMS, Europe"])
    assert [m.id for m in europe.maintenances] == [TELE2]
    assert len(service_view(whole, []).maintenances) == 9  # a service owning the whole page
