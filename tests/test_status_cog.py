"""/status through the neutral dispatch, on data stored the way the poller stores it."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.console_render import render_reply as render_console
from bot.adapters.discord.render import render_reply as render_discord
from bot.charts.model import Chart, ReportSeries
from bot.charts.service_chart import ReportCharts
from bot.core.commands import CommandRegistry, Reply, Tone
from bot.core.links import WebLink
from bot.core.rich import Quoted, to_plain
from bot.core.service_state import ServiceState, derive_state
from bot.core.service_view import service_view
from bot.core.status import ComponentStatus, Indicator
from bot.services.deps import AppDeps
from bot.sources.catalog import parse_catalog
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.crowd_models import ReportRow
from bot.store.engine import session_factory
from bot.testing import TestAdapter, reply_text
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import incident, snapshot

OPENAI = "https://status.openai.com/api/v2/summary.json"
CLAUDE = "https://status.claude.com/api/v2/summary.json"

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "aliases": ["openai", "gpt"],
                "status_page": "https://status.openai.com",
                "components": ["API"],
                "source": [{"kind": "statuspage", "url": OPENAI}],
            },
            {
                "id": "chatgpt",
                "name": "ChatGPT",
                "components": ["Conversations"],
                "source": [{"kind": "statuspage", "url": OPENAI}],
            },
            {
                "id": "anthropic-api",
                "name": "Anthropic API",
                "aliases": ["claude", "anthropic"],
                "source": [{"kind": "statuspage", "url": CLAUDE}],
            },
            {
                "id": "mistral",
                "name": "Mistral AI",
                "source": [{"kind": "probe", "url": "https://api.mistral.ai/v1/models"}],
            },
        ]
    }
)


@pytest.fixture
async def deps(engine: AsyncEngine, clock: FakeClock) -> AppDeps:
    sessions = session_factory(engine)
    started = clock.now - timedelta(minutes=42)
    outage = snapshot(
        indicator=Indicator.MAJOR,
        components=(
            ("API", ComponentStatus.MAJOR_OUTAGE),
            ("Conversations", ComponentStatus.OPERATIONAL),
        ),
        incidents=(
            incident(
                "inc-1",
                started=started,
                updates=(
                    (
                        "identified",
                        "We found the cause. @everyone <@&42> **bold**",
                        clock.now - timedelta(minutes=3),
                    ),
                    ("investigating", "Elevated errors on the API.", started),
                ),
            ),
        ),
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        for url, snap in ((OPENAI, outage), (CLAUDE, snapshot())):
            source = await source_store.get_source(session=session, url=url)
            assert source is not None
            await source_store.record_snapshot(
                session=session,
                source=source,
                snapshot=snap,
                etag=None,
                last_modified=None,
                now=clock.now,
            )
            for service in CATALOG:
                if any(s.url == url for s in service.sources):
                    view = service_view(snap, service.components)
                    await detection_store.link_incidents(
                        session=session,
                        service_id=service.id,
                        source_id=source.id or 0,
                        external_ids=[i.id for i in view.incidents],
                    )
                    await service_state_store.set_service_state(
                        session=session,
                        service_id=service.id,
                        state=derive_state(view, service.components),
                        now=started,
                    )
        await session.commit()
    return AppDeps(catalog=CATALOG, sessions=sessions, registry=load_cogs(CommandRegistry()))


async def ask(deps: AppDeps, clock: FakeClock, **options: str) -> Reply:
    return await TestAdapter.of(deps, clock, community="c1").invoke("status", options)


async def test_overview_lists_every_monitored_service(deps: AppDeps, clock: FakeClock) -> None:
    reply = await ask(deps, clock)
    text = reply_text(reply, clock.now)
    assert reply.title == "Service status"
    assert reply.tone is Tone.DANGER
    assert "1 of 4 services report problems." in text
    assert "🔴 OpenAI API — Major outage since 42 min ago" in text
    assert "🟢 ChatGPT — Operational" in text  # same page, its own component is fine
    assert "🟢 Anthropic API — Operational" in text
    assert "1 open incident" in text
    assert "⚪ Mistral AI — Unknown" in text  # probe-only, not probed yet


@pytest.mark.parametrize("name", ["openai", "GPT", "OpenAI API", "openai-api", "  gpt  "])
async def test_detail_by_alias_or_name(deps: AppDeps, clock: FakeClock, name: str) -> None:
    reply = await ask(deps, clock, service=name)
    text = reply_text(reply, clock.now)
    assert reply.title == "OpenAI API status"
    assert reply.tone is Tone.DANGER
    assert "Major outage since 42 min ago" in text
    assert "Components: 🔴 API — Major outage" in text
    assert "Conversations" not in text  # not one of this service's components
    assert "Incident: Incident inc-1" in text
    assert "Latest update (3 min ago" in text
    assert reply.buttons[0].action == "report openai-api"  # "I'm affected too"
    assert reply.buttons[1].url == WebLink("https://status.openai.com")


async def test_status_page_text_is_marked_untrusted(deps: AppDeps, clock: FakeClock) -> None:
    reply = await ask(deps, clock, service="openai")
    incident_field = next(f for f in reply.fields if f.name.startswith("Incident"))
    quoted = [s for s in incident_field.value if isinstance(s, Quoted)]
    assert quoted == [Quoted("We found the cause. @everyone <@&42> **bold**")]


async def test_shared_page_incident_hidden_from_healthy_sibling(
    deps: AppDeps, clock: FakeClock
) -> None:
    reply = await ask(deps, clock, service="chatgpt")
    text = reply_text(reply, clock.now)
    assert "Operational" in text
    assert "Incident" not in text
    assert "No open incidents" in text


async def test_unknown_service_suggests_the_closest(deps: AppDeps, clock: FakeClock) -> None:
    reply = await ask(deps, clock, service="opnai")
    assert reply.ephemeral
    text = to_plain(reply.body, clock.now)
    assert "I don't track “opnai”" in text
    assert "OpenAI API (openai-api)" in text
    reply = await ask(deps, clock, service="zzzzzz")
    assert "/status lists every service" in to_plain(reply.body, clock.now)


async def test_probe_only_service_says_where_its_state_comes_from(
    deps: AppDeps, clock: FakeClock
) -> None:
    async with deps.sessions() as session:
        await service_state_store.set_service_state(
            session=session, service_id="mistral", state=ServiceState.OPERATIONAL, now=clock.now
        )
        await session.commit()
    reply = await ask(deps, clock, service="mistral")
    text = reply_text(reply, clock.now)
    assert "Operational" in text
    assert "comes from our own API check" in text
    assert "No open incidents" not in text  # there is no official page to have incidents


async def test_unreadable_page_is_explained(deps: AppDeps, clock: FakeClock) -> None:
    async with deps.sessions() as session:
        await service_state_store.set_service_state(
            session=session, service_id="anthropic-api", state=ServiceState.UNKNOWN, now=clock.now
        )
        await session.commit()
    reply = await ask(deps, clock, service="claude")
    text = reply_text(reply, clock.now)
    assert "Unknown (status page unreachable)" in text
    assert "that alone is not an outage" in text
    assert "Components (last known): 🟢 API" in text  # stale data is labelled as such
    overview = reply_text(await ask(deps, clock), clock.now)
    assert "2 status pages could not be read." in overview  # Anthropic, and Mistral unprobed


async def test_help_lists_commands(deps: AppDeps, clock: FakeClock) -> None:
    reply = await TestAdapter.of(deps, clock, community="c1").invoke("help")
    assert "/status — " in to_plain(reply.body, clock.now)


async def add_reports(deps: AppDeps, clock: FakeClock, minutes_ago: list[int]) -> None:
    async with deps.sessions() as session:
        session.add_all(
            ReportRow(
                service_id="openai-api",
                what="errors",
                reporter_hash=f"user-{n}",
                platform="discord",
                community_id="g1",
                at=clock.now - timedelta(minutes=ago),
            )
            for n, ago in enumerate(minutes_ago)
        )
        await session.commit()


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_detail_attaches_the_24h_report_chart(deps: AppDeps, clock: FakeClock) -> None:
    await add_reports(deps, clock, [20, 21, 22, 23, 24, 25, 26, 300])  # 11:34-11:40, and 07:00
    reply = await ask(deps, clock, service="openai")
    assert reply.image_png is not None
    assert reply.image_png.startswith(PNG_SIGNATURE)
    assert reply.image_alt == (
        "Reports per 15 min over the last 24 h: peak 7 at 11:30 UTC, usual 0; "
        "official incident 11:18–now shaded"
    )
    text = reply_text(reply, clock.now)
    assert (
        "8 problem reports in the last 24 h. Busiest 15 min: 7 (usual 0), from 30 min ago" in text
    )
    # Discord attaches it with the alt text as the file's description; the console says it.
    discord_message = render_discord(reply, clock.now)
    assert discord_message.embed.image.url == "attachment://chart.png"
    assert discord_message.payload()["attachments"][0]["description"] == reply.image_alt
    assert f"(chart: {reply.image_alt}" in render_console(reply, clock.now, width=400)


async def test_a_quiet_service_gets_no_chart(deps: AppDeps, clock: FakeClock) -> None:
    reply = await ask(deps, clock, service="chatgpt")  # no reports, no incident of its own
    assert reply.image_png is None
    assert reply.image_alt == ""
    assert "No problem reports in the last 24 h." in reply_text(reply, clock.now)


async def test_status_answers_without_the_chart_when_drawing_fails(
    deps: AppDeps, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(series: ReportSeries) -> Chart:
        raise MemoryError("out of memory while drawing")

    deps = replace(deps, report_charts=ReportCharts(render=broken))
    await add_reports(deps, clock, [5, 6])
    with caplog.at_level(logging.ERROR):
        reply = await ask(deps, clock, service="openai")
    assert reply.title == "OpenAI API status"
    assert not reply.ephemeral
    assert reply.image_png is None
    assert "2 problem reports in the last 24 h." in reply_text(reply, clock.now)
    assert "drawing the report chart of openai-api failed" in caplog.text
