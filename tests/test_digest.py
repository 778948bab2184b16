"""Several services failing together (a shared upstream): one digest per channel, not a burst."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.alert_render import render_digest
from bot.core.events import DetectionEvent, EventKind
from bot.core.rich import to_plain
from bot.core.service_state import ServiceState
from bot.delivery.worker import OutboxWorker
from bot.sources.catalog import parse_catalog
from bot.store import (
    alert_store,
    catalog_store,
    detection_store,
    service_state_store,
    source_store,
    subscription_store,
)
from bot.store.engine import session_factory
from bot.store.subscription_store import Scope
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.helpers import incident_view, subscribe

SERVICES = ("openai-api", "anthropic-api", "github")
CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": s,
                "name": s.replace("-", " ").title(),
                "source": [{"kind": "feed", "url": f"https://{s}/f"}],
            }
            for s in SERVICES
        ]
    }
)


def event(
    service: str, kind: EventKind, clock: FakeClock, body: str, status: str = "investigating"
) -> DetectionEvent:
    detail = {
        "status": "resolved" if kind is EventKind.INCIDENT_RESOLVED else status,
        "impact": "major",
        "update_status": status,
        "update_body": body,
        "update_at": clock.now.isoformat(),
        "started_at": clock.now.isoformat(),
    }
    return DetectionEvent(
        kind=kind,
        service_id=service,
        at=clock.now,
        key=f"{kind}:{service}:{clock.now}",
        incident_id=f"inc-{service}",
        title=f"{service} errors",
        detail=detail,
    )


class Rig:
    """Channels subscribed to services, a worker delivering to a recording sender, and a way
    to make things happen: events recorded, then one round of the worker."""

    def __init__(self, engine: AsyncEngine, clock: FakeClock) -> None:
        self.sessions = session_factory(engine)
        self.clock = clock
        self.sender = RecordingSender()
        self.worker = OutboxWorker(
            sessions=self.sessions, senders={"test": self.sender}, catalog=CATALOG, clock=clock
        )

    async def subscribe(self, places: dict[str, str], services: tuple[str, ...]) -> None:
        """Subscribe each channel (channel → guild) to each service."""
        async with self.sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=CATALOG)
            for service in services:
                for channel, guild in places.items():
                    await subscribe(session, Scope("test", guild), channel, service, self.clock.now)
            await session.commit()

    async def happen(self, *events: DetectionEvent) -> None:
        async with self.sessions() as session:
            await alert_store.record_alert_events(
                session=session, events=events, now=self.clock.now
            )
            await session.commit()
        await self.worker.run_once()


async def test_services_failing_together_share_one_message(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    rig = Rig(engine, clock)
    await rig.subscribe({"ops": "guild", "other-guild-ops": "guild-2"}, SERVICES)
    sender, happen = rig.sender, rig.happen
    await happen(event("openai-api", EventKind.INCIDENT_OPENED, clock, "Errors"))
    clock.advance(minutes=2)
    await happen(
        event("anthropic-api", EventKind.INCIDENT_OPENED, clock, "Errors too"),
        event("github", EventKind.INCIDENT_OPENED, clock, "Also"),
    )
    ops = [c for c in sender.calls if c.channel.channel_id == "ops"]
    assert [c.action for c in ops] == ["send", "edit", "edit"]  # one post, then it grows
    assert {c.message_id for c in ops} == {ops[0].message_id}
    assert ops[-1].reply.title == "⚠️ 3 of 3 services report problems"
    digest = to_plain(ops[-1].reply.body, clock.now)
    assert "Openai Api:" in digest
    assert "Anthropic Api:" in digest
    assert "Github:" in digest
    # Each community's channel got its own single message.
    assert [c.action for c in sender.calls if c.channel.channel_id == "other-guild-ops"].count(
        "send"
    ) == 1

    clock.advance(minutes=30)
    await happen(
        event("anthropic-api", EventKind.INCIDENT_UPDATED, clock, "Fix deployed", "monitoring")
    )
    reply = [c for c in sender.calls if c.channel.channel_id == "ops" and c.action == "thread"][-1]
    assert to_plain(reply.reply.body, clock.now).startswith(
        "Anthropic Api: Monitoring"
    )  # named in a digest
    for service in SERVICES:
        await happen(event(service, EventKind.INCIDENT_RESOLVED, clock, "Fixed", "resolved"))
    final = [c for c in sender.calls if c.channel.channel_id == "ops" and c.action == "edit"][-1]
    assert final.reply.title == "✅ All 3 services recovered"
    assert [c.action for c in sender.calls].count("send") == 2  # still one message per channel


async def test_an_incident_alone_in_its_round_joins_an_open_one_and_not_a_resolved_one(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    """The fast lane looks for a message to join only while another incident is open."""
    rig = Rig(engine, clock)
    await rig.subscribe({"ops": "guild"}, SERVICES)
    sender, happen = rig.sender, rig.happen
    await happen(event("openai-api", EventKind.INCIDENT_OPENED, clock, "Errors"))
    clock.advance(minutes=2)
    await happen(event("anthropic-api", EventKind.INCIDENT_OPENED, clock, "Errors too"))
    assert [c.action for c in sender.calls] == ["send", "edit"]  # joined the open one
    await happen(event("openai-api", EventKind.INCIDENT_RESOLVED, clock, "Fixed", "resolved"))
    await happen(event("anthropic-api", EventKind.INCIDENT_RESOLVED, clock, "Fixed", "resolved"))
    clock.advance(minutes=2)
    sent = len(sender.calls)
    await happen(event("github", EventKind.INCIDENT_OPENED, clock, "Also"))
    assert [c.action for c in sender.calls[sent:]] == ["send"]  # nothing open to join


async def test_an_incident_long_after_gets_its_own_message(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        for service in SERVICES[:2]:
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope("test", "guild"),
                channel_id="ops",
                service_id=service,
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=False,
                maintenance=True,
                now=clock.now,
            )
        await session.commit()
    sender = RecordingSender()
    worker = OutboxWorker(sessions=sessions, senders={"test": sender}, catalog=CATALOG, clock=clock)
    for service, gap in (("openai-api", 0), ("anthropic-api", 45)):
        clock.advance(minutes=gap)
        async with sessions() as session:
            await alert_store.record_alert_events(
                session=session,
                events=[event(service, EventKind.INCIDENT_OPENED, clock, "x")],
                now=clock.now,
            )
            await session.commit()
        await worker.run_once()
    assert [c.action for c in sender.calls] == ["send", "send"]


async def test_open_incident_alert_estimates_its_duration(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    from tests.helpers import catalog_for, incident, snapshot

    url = "https://status.example.com/api/v2/summary.json"
    catalog = catalog_for({"svc": url})
    sessions = session_factory(engine)
    past = tuple(
        incident(
            f"old{n}",
            started=clock.now - timedelta(days=10 * n + 1),
            impact="major",
            updates=(
                (
                    "resolved",
                    "ok",
                    clock.now - timedelta(days=10 * n + 1) + timedelta(minutes=minutes),
                ),
            ),
            resolved=clock.now - timedelta(days=10 * n + 1) + timedelta(minutes=minutes),
        )
        for n, minutes in enumerate((30, 60, 90, 120))
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        source = await source_store.get_source(session=session, url=url)
        assert source is not None
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(incidents=past),
            etag=None,
            last_modified=None,
            now=clock.now,
        )
        await detection_store.link_incidents(
            session=session,
            service_id="svc",
            source_id=source.id or 0,
            external_ids=[i.id for i in past],
        )
        await subscription_store.upsert_subscription(
            session=session,
            scope=Scope("test", "g"),
            channel_id="ops",
            service_id="svc",
            components=(),
            min_severity="minor",
            mention_role=None,
            early_warnings=False,
            maintenance=True,
            now=clock.now,
        )
        await alert_store.record_alert_events(
            session=session,
            events=[event("svc", EventKind.INCIDENT_OPENED, clock, "Down")],
            now=clock.now,
        )
        await session.commit()
    sender = RecordingSender()
    await OutboxWorker(
        sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock
    ).run_once()
    fields = {f.name: to_plain(f.value, clock.now) for f in sender.calls[0].reply.fields}
    assert (
        fields["Similar incidents lasted"]
        == "52 min to 1 h 37 min (middle half of 4 past incidents)"  # quartiles of 30-120 min
    )


async def test_major_outage_alert_names_working_alternatives(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    catalog = parse_catalog(
        {
            "service": [
                {
                    "id": s,
                    "name": s.title(),
                    "capabilities": ["chat"],
                    "source": [{"kind": "feed", "url": f"https://{s}/f"}],
                }
                for s in ("down", "up1", "up2")
            ]
        }
    )
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        for service in ("up1", "up2"):
            await service_state_store.set_service_state(
                session=session, service_id=service, state=ServiceState.OPERATIONAL, now=clock.now
            )
        for channel, wanted in (("with", True), ("without", False)):
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope("test", "g"),
                channel_id=channel,
                service_id="down",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=False,
                maintenance=True,
                now=clock.now,
                alternatives=wanted,
            )
        await alert_store.record_alert_events(
            session=session,
            events=[event("down", EventKind.INCIDENT_OPENED, clock, "Down")],
            now=clock.now,
        )
        await session.commit()
    sender = RecordingSender()
    await OutboxWorker(
        sessions=sessions, senders={"test": sender}, catalog=catalog, clock=clock
    ).run_once()
    shown = {
        c.channel.channel_id: {f.name: to_plain(f.value, clock.now) for f in c.reply.fields}
        for c in sender.calls
    }
    assert shown["with"]["Working alternatives now"] == "Up1, Up2"
    assert "Working alternatives now" not in shown["without"]


def test_a_digest_has_one_button_per_service() -> None:
    views = [
        incident_view(service, title, datetime(2026, 11, 27, 12, 0, tzinfo=UTC))
        for service, title in (("svc", "API errors"), ("svc", "Login errors"), ("other", "Down"))
    ]
    reply = render_digest(views)
    assert [b.action for b in reply.buttons] == ["status svc", "status other"]
