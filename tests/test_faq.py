"""/faq and /faq-edit through the neutral dispatch, with facts from a replayed real outage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.commands import CommandRegistry
from bot.core.rich import Quoted
from bot.services.deps import AppDeps
from bot.sources.catalog import Catalog, parse_catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, parse_timeline, summary_at
from bot.store import catalog_store, detection_store, source_store
from bot.store.engine import session_factory
from bot.testing import TestAdapter
from cogs import load_cogs
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import incident, snapshot

INCIDENTS_PATH = "/api/v2/incidents.json"
CALM_PATH = "/calm/api/v2/summary.json"
TIMELINE = parse_timeline(
    (
        FIXTURES / "timelines" / "anthropic_2025-12-14_9g6qpr72ttbr_elevated_errors_many_models.txt"
    ).read_text()
)
PAST_MINUTES = (30, 60, 90, 120)


def catalog(url: str, calm: str) -> Catalog:
    return parse_catalog(
        {
            "service": [
                {
                    "id": "claude",
                    "name": "Claude",
                    "capabilities": ["chat", "code"],
                    "status_page": "https://status.claude.com",
                    "sla": "https://www.anthropic.com/legal/sla",
                    "source": [{"kind": "statuspage", "url": url}],
                },
                {
                    "id": "other",
                    "name": "Other AI",
                    "capabilities": ["chat"],
                    "source": [{"kind": "statuspage", "url": calm}],
                },
            ]
        }
    )


class Replay:
    """A real outage served by a fake status page and read by the real poller."""

    def __init__(
        self, server: FakeStatusServer, poller: StatusPoller, deps: AppDeps, clock: FakeClock
    ):
        self.server, self.poller, self.deps, self.clock = server, poller, deps, clock
        self.bot = TestAdapter.of(deps, clock, platform="discord", community="A")

    async def poll_at(self, moment: datetime) -> None:
        self.clock.now = moment
        self.server.set_json(SUMMARY_PATH, summary_at(TIMELINE, moment))
        self.server.set_json(INCIDENTS_PATH, incidents_at(TIMELINE, moment))
        await self.poller.poll_all()


@pytest.fixture
async def replay(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Replay]:
    async with FakeStatusServer() as server, new_http_session(user_agent="tests") as http:
        server.set_json(CALM_PATH, summary_at(TIMELINE, TIMELINE.started_at - timedelta(days=1)))
        cat = catalog(server.url(SUMMARY_PATH), server.url(CALM_PATH))
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=cat)
            await _seed_history(session, server.url(SUMMARY_PATH), clock)
        poller = StatusPoller(
            catalog=cat,
            sessions=sessions,
            fetcher=HttpFetcher(http, timeout=1),
            prober=HttpProber(http),
            clock=clock,
        )
        deps = AppDeps(catalog=cat, sessions=sessions, registry=load_cogs(CommandRegistry()))
        run = Replay(server, poller, deps, clock)
        await run.poll_at(TIMELINE.started_at - timedelta(minutes=5))
        yield run


async def _seed_history(session: object, url: str, clock: FakeClock) -> None:
    """Four past major incidents of the same service, resolved, as the poller would store them."""
    source = await source_store.get_source(session=session, url=url)  # type: ignore[arg-type]
    assert source is not None
    past = []
    for index, minutes in enumerate(PAST_MINUTES):
        start = TIMELINE.started_at - timedelta(days=20 + 7 * index)
        end = start + timedelta(minutes=minutes)
        past.append(
            incident(
                f"past-{index}",
                started=start,
                resolved=end,
                updates=(
                    ("resolved", "Resolved. Affected customers may request a service credit.", end),
                ),
            )
        )
    await source_store.record_push(
        session=session,  # type: ignore[arg-type]
        source=source,
        snapshot=snapshot(incidents=tuple(past)),
        now=TIMELINE.started_at - timedelta(days=1),
    )
    await detection_store.link_incidents(
        session=session,  # type: ignore[arg-type]
        service_id="claude",
        source_id=source.id or 0,
        external_ids=[i.id for i in past],
    )
    await session.commit()  # type: ignore[attr-defined]


async def test_attack_quotes_only_what_the_provider_said(replay: Replay) -> None:
    await replay.poll_at(TIMELINE.started_at + timedelta(minutes=2))
    early = await replay.bot.text("faq attack claude")
    assert "have not said what caused it yet" in early
    await replay.poll_at(TIMELINE.started_at + timedelta(minutes=16))  # "We have identified…"
    said = await replay.bot.text("faq attack claude")
    assert "What the provider says so far" in said
    assert "We have identified that the outage" in said
    assert "https://status.claude.com/incidents/9g6qpr72ttbr" in said
    for moment in (TIMELINE.updates[-2].posted_at, TIMELINE.updates[-1].posted_at):
        await replay.poll_at(moment + timedelta(minutes=1))
    after = await replay.bot.text("faq attack claude")
    assert "network routing misconfiguration" in after  # the postmortem


async def test_duration_elapsed_per_component_and_estimate(replay: Replay) -> None:
    now = TIMELINE.started_at + timedelta(minutes=40)
    await replay.poll_at(TIMELINE.started_at + timedelta(minutes=1))
    await replay.poll_at(now)
    answer = await replay.bot.text("faq duration claude")
    assert "has been going on for 40 min" in answer
    for component in TIMELINE.components:
        assert f"{component}: major outage for 39 min" in answer
    # PAST_MINUTES 30/60/90/120: quartiles 52.5 and 97.5 min (inclusive method), four incidents.
    assert "lasted 52 min to 1 h 37 min (the middle half of 4 incidents" in answer
    assert "about 12 min to 57 min more" in answer
    # Without a service named, the one service in trouble is meant.
    assert "has been going on for 40 min" in await replay.bot.text("faq how-long")


async def test_compensation_again_prepare(replay: Replay) -> None:
    await replay.poll_at(TIMELINE.started_at + timedelta(minutes=10))
    money = await replay.bot.text("faq compensation claude")
    assert "https://www.anthropic.com/legal/sla" in money
    assert "service credit" in money  # quoted from a past official update
    again = await replay.bot.text("faq again claude")
    assert "Claude in the last 90 days: 5 incident(s) (5 major)" in again  # 4 past + this one
    assert "uptime" in again
    assert "mean time to recovery 1 h 15 min" in again
    prepare = await replay.bot.text("faq prepare claude")
    assert "Other AI" in prepare
    assert "backoff" in prepare


async def test_topics_and_community_entries_take_precedence(replay: Replay) -> None:
    topics = await replay.bot.text("faq")
    assert all(key in topics for key in ("attack", "duration", "compensation", "again", "prepare"))
    refused = await replay.bot.text("faq-edit set attack Ask in #status first")
    assert "Only server admins" in refused
    assert "Added" in await replay.bot.text(
        "faq-edit set attack @everyone **no** it isn't", admin=True
    )
    mine = await replay.bot.text("faq attack claude")
    assert "@everyone **no** it isn't" in mine
    assert "community's admins" in mine
    assert "this community's answer" in await replay.bot.text("faq")
    # Another community still gets the built-in answer.
    assert "community's admins" not in await replay.bot.text("faq attack claude", community="B")
    assert "Updated" in await replay.bot.text("faq-edit set attack Changed", admin=True)
    assert "Added" in await replay.bot.text("faq-edit set vpn Use the office VPN", admin=True)
    assert "vpn" in await replay.bot.text("faq")
    assert "Use the office VPN" in await replay.bot.text("faq vpn")
    assert "built-in answer is back" in await replay.bot.text("faq-edit remove attack", admin=True)
    assert "community's admins" not in await replay.bot.text("faq attack claude")
    assert "no FAQ topic" in await replay.bot.text("faq nosuch")
    assert "letters, digits" in await replay.bot.text("faq-edit set <@&1> x", admin=True)


async def test_entry_text_is_stored_as_written_and_quoted(replay: Replay) -> None:
    written = "<@&42> [x](javascript:alert(1))"
    await replay.bot.text(f"faq-edit set vpn {written}", admin=True)
    reply = await replay.bot.run("faq vpn", user="u")
    assert reply.body == (Quoted(written),)
