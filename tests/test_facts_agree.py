"""One read model (issue #20): /status, /report, /faq, the dashboard, the JSON API and the alert
message say the same thing about the same stored data.

The data: Alpha is in a major outage with its own API check failing, an incident open for ten
days, a crowd detector that has learned 8 reports an hour, and four similar past incidents, two
of them resolved a little more than a year ago (counted from its start, not from today).
Beta is operational with an early warning open; Gamma's page has never been read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.charts.model import Chart, ReportSeries, describe
from bot.charts.service_chart import ReportCharts
from bot.core import crowd
from bot.core.commands import CommandRegistry
from bot.core.crowd_codec import encode_crowd_memory
from bot.core.detection import ServiceMemory
from bot.core.service_state import ServiceState
from bot.core.timeutil import format_duration
from bot.delivery.alert_views import estimate_for
from bot.services import facts
from bot.services.deps import AppDeps
from bot.sources.catalog import parse_catalog
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.crowd_models import CrowdMemoryRow, EarlyWarningRow, ReportRow
from bot.store.engine import session_factory
from bot.store.models import AlertRow
from bot.testing import TestAdapter, reply_text
from bot.web.server import WebServer, create_web_app
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import link_incidents

ALPHA_PAGE = "https://status.alpha.example/api/v2/summary.json"
ALPHA_PROBE = "https://api.alpha.example/v1/models"
CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "alpha",
                "name": "Alpha",
                "source": [
                    {"kind": "statuspage", "url": ALPHA_PAGE},
                    {"kind": "probe", "url": ALPHA_PROBE},
                ],
            },
            {
                "id": "beta",
                "name": "Beta",
                "source": [{"kind": "statuspage", "url": "https://status.beta.example/s.json"}],
            },
            {
                "id": "gamma",
                "name": "Gamma",
                "source": [{"kind": "feed", "url": "https://gamma.example/feed"}],
            },
        ]
    }
)
USUAL_PER_HOUR = 8.0
HEADLINE = (
    "1 of 3 services report problems. 1 early warning from user reports (unconfirmed). "
    "1 status page could not be read."
)


@dataclass
class Rig:
    deps: AppDeps
    clock: FakeClock
    web: str
    http: aiohttp.ClientSession

    async def say(self, command: str, *, user: str = "u1", **options: str) -> str:
        reply = await TestAdapter.of(self.deps, self.clock).invoke(
            command, options, user=user, community=f"g-{user}"
        )
        return reply_text(reply, self.clock.now)

    async def page(self, path: str) -> str:
        async with self.http.get(self.web + path) as response:
            assert response.status == 200
            return await response.text()

    async def api(self, path: str) -> dict[str, object]:
        async with self.http.get(self.web + "/api/v1" + path) as response:
            assert response.status == 200
            found: dict[str, object] = await response.json()
            return found


def _alt_only(series: ReportSeries) -> Chart:
    return Chart(png=b"", alt=describe(series))  # the words are what is compared, not pixels


async def _seed(deps: AppDeps, clock: FakeClock) -> None:
    now = clock.now
    week = [(now - timedelta(hours=h), int(USUAL_PER_HOUR)) for h in range(168, 0, -1)]
    memory = crowd.learn_history(crowd.CrowdMemory(), week, config=crowd.CrowdConfig())
    async with deps.sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        await service_state_store.set_service_state(
            session=session, service_id="alpha", state=ServiceState.MAJOR_OUTAGE, now=now
        )
        await service_state_store.set_service_state(
            session=session, service_id="beta", state=ServiceState.OPERATIONAL, now=now
        )
        await detection_store.save_memory(
            session=session,
            service_id="alpha",
            source_url=ALPHA_PROBE,
            memory=ServiceMemory(probe_down=True),
            now=now,
        )
        session.add(
            CrowdMemoryRow(service_id="alpha", memory=encode_crowd_memory(memory), updated_at=now)
        )
        # Enough reports in the stored week to name a usual level at all (a quiet one).
        session.add_all(
            ReportRow(
                service_id="alpha",
                what="errors",
                reporter_hash=f"old-{n}",
                platform="discord",
                community_id="g1",
                at=now - timedelta(days=2, hours=n),
            )
            for n in range(12)
        )
        session.add(
            EarlyWarningRow(
                service_id="beta",
                level="reported",
                first_report_at=now - timedelta(minutes=20),
                opened_at=now - timedelta(minutes=10),
            )
        )
        source = await source_store.get_source(session=session, url=ALPHA_PAGE)
        assert source is not None
        assert source.id is not None
        incidents = [
            (now - timedelta(days=10), None),  # the one asked about
            (now - timedelta(days=100), now - timedelta(days=100) + timedelta(hours=1)),
            (now - timedelta(days=200), now - timedelta(days=200) + timedelta(hours=2)),
            # More than a year before today, less than a year before the open one began.
            (now - timedelta(days=370), now - timedelta(days=370) + timedelta(hours=3)),
            (now - timedelta(days=372), now - timedelta(days=372) + timedelta(hours=4)),
        ]
        await link_incidents(session, source.id, [("alpha", *times) for times in incidents])
        await session.commit()


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
    deps = AppDeps(
        catalog=CATALOG,
        sessions=session_factory(engine),
        registry=load_cogs(CommandRegistry()),
        report_charts=ReportCharts(render=_alt_only),
    )
    await _seed(deps, clock)
    server = WebServer(create_web_app(clock=clock, deps=deps), host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield Rig(deps, clock, f"http://127.0.0.1:{server.bound_port}", http)
    finally:
        await server.stop()


async def test_status_and_the_dashboard_open_with_the_same_headline(rig: Rig) -> None:
    assert HEADLINE in await rig.say("status")
    assert HEADLINE in await rig.page("/")


async def test_everyone_sees_the_failing_api_check(rig: Rig) -> None:
    assert "Our own API check is failing" in await rig.say("status", service="alpha")
    assert "Our own API check is failing" in await rig.page("/")
    assert (await rig.api("/services/alpha"))["probe_failing"] is True
    assert "Our own API check is failing" not in await rig.say("status", service="beta")


async def test_status_report_and_the_dashboard_quote_one_usual_level(rig: Rig) -> None:
    """The detector learned 8 an hour: the dashboard says so, the chart /status quotes says 2
    per 15 minutes, and /report compares 20 reporters in 30 minutes with 4 (5x)."""
    assert "(usually 8.0 an hour)" in await rig.page("/")
    assert (await rig.api("/services/alpha/reports"))["usual_per_hour"] == USUAL_PER_HOUR
    for user in range(20):
        text = await rig.say("report", user=f"now-{user}", service="alpha")
    assert "You and 19 others" in text
    assert "(5× the usual)" in text
    rig.clock.advance(minutes=1)  # the chart's span ends at now: the reports are in it now
    assert "Busiest 15 min: 20 (usual 2)" in await rig.say("status", service="alpha")


async def test_faq_and_the_alert_estimate_the_same_duration(rig: Rig) -> None:
    started = rig.clock.now - timedelta(days=10)
    alert = AlertRow(
        service_id="alpha",
        subject_id="inc-0",
        title="Incident 0",
        status="investigating",
        impact="major",
        started_at=started,
        updated_at=rig.clock.now,
    )
    async with rig.deps.sessions() as session:
        in_alert = await estimate_for(session, alert)
        fact = await facts.duration_estimate(
            session, service_id="alpha", impact="major", started_at=started
        )
    assert in_alert is not None
    assert (fact.similar, fact.estimate) == (4, in_alert)
    answer = await rig.say("faq", topic="duration", service="alpha")
    assert (
        f"lasted {format_duration(in_alert.low)} to {format_duration(in_alert.high)} "
        "(the middle half of 4 incidents in the past year)"
    ) in answer
