"""The 24 h report chart: the series query, the PNG and its alt text, the per-minute cache."""

from __future__ import annotations

import asyncio
import random
import struct
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.charts.model import Chart, IncidentWindow, ReportSeries, describe
from bot.charts.render import render_report_chart
from bot.charts.series import load_report_series
from bot.charts.service_chart import ReportCharts
from bot.core import crowd
from bot.core.commands import CommandRegistry
from bot.core.crowd_codec import encode_crowd_memory
from bot.services.deps import AppDeps
from bot.sources.catalog import parse_catalog
from bot.store.crowd_models import CrowdMemoryRow, ReportRow
from bot.store.engine import session_factory
from bot.store.models import ServiceRow, SourceRow
from tests.conftest import REPO, FakeClock
from tests.helpers import link_incidents

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 60_000
NOW = datetime(2026, 11, 27, 16, 7, 30, tzinfo=UTC)
START = datetime(2026, 11, 26, 16, 15, tzinfo=UTC)  # 96 buckets of 15 min, the last one filling
Q = timedelta(minutes=15)

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "source": [{"kind": "feed", "url": "https://a.example/feed"}],
            },
            {
                "id": "gemini",
                "name": "Gemini",
                "source": [{"kind": "feed", "url": "https://b.example/feed"}],
            },
        ]
    }
)


def report(service: str, at: datetime, *, counted: bool = True, who: str = "h") -> ReportRow:
    return ReportRow(
        service_id=service,
        what="errors",
        reporter_hash=who,
        platform="discord",
        community_id="g1",
        at=at,
        counted=counted,
    )


async def add_incidents(
    engine: AsyncEngine, incidents: list[tuple[str, datetime, datetime | None]]
) -> None:
    """Store incidents (service, started, resolved) the way the poller links them."""
    sessions = session_factory(engine)
    async with sessions() as session:
        for service in CATALOG:
            session.add(ServiceRow(id=service.id, name=service.name, provider=service.name))
        source = SourceRow(url="https://status.example.com/api/v2/summary.json", kind="statuspage")
        session.add(source)
        await session.flush()
        await link_incidents(session, source.id or 0, incidents)
        await session.commit()


async def test_series_counts_counted_reports_per_15_min(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add_all(
            [
                report("openai-api", START - timedelta(microseconds=1)),  # just before the span
                report("openai-api", START),  # first bucket, on its edge
                report("openai-api", START + Q - timedelta(seconds=1)),  # still the first
                report("openai-api", START + Q),  # second
                report("openai-api", START + 5 * Q - timedelta(microseconds=1)),  # the fifth
                report("openai-api", START + Q, counted=False),  # a repeat: not counted
                report("gemini", START + Q),  # another service
                *(report("openai-api", at(14, 15 + m)) for m in range(6)),  # the peak
                report("openai-api", datetime(2026, 11, 27, 16, 7, tzinfo=UTC)),  # filling bucket
                report("openai-api", NOW),  # not before now: not in the span
            ]
        )
        await session.commit()
    await add_incidents(
        engine,
        [
            ("openai-api", at(13, 50), at(15, 10)),
            ("openai-api", at(15, 50), None),  # still open
            ("openai-api", at(9, 0, day=26), at(10, 0, day=26)),  # over before the span
            ("gemini", at(12, 0), None),  # another service's
        ],
    )
    async with sessions() as session:
        series = await load_report_series(session=session, service_id="openai-api", now=NOW)

    assert (series.start, series.end, series.bucket) == (START, NOW, Q)
    assert len(series.counts) == len(series.usual) == 96
    expected = [0] * 96
    expected[0], expected[1], expected[4] = 2, 1, 1
    peak = index_of(at(14, 15))
    expected[peak] = 6
    expected[95] = 1
    assert list(series.counts) == expected
    assert series.total == 11
    assert series.peak == peak
    assert series.incidents == (
        IncidentWindow(at(13, 50), at(15, 10), "major"),
        IncidentWindow(at(15, 50), None, "major"),
    )


async def test_usual_comes_from_the_detectors_learned_baseline(engine: AsyncEngine) -> None:
    config = crowd.CrowdConfig()
    week = [(START - timedelta(hours=h), 8) for h in range(168, 0, -1)]
    memory = crowd.learn_history(crowd.CrowdMemory(), week, config=config)
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add(
            CrowdMemoryRow(
                service_id="openai-api", memory=encode_crowd_memory(memory), updated_at=NOW
            )
        )
        # Stored reports of the week before must not matter when the detector has learned.
        session.add_all(report("openai-api", START - timedelta(hours=h)) for h in range(1, 40))
        await session.commit()
    async with sessions() as session:
        series = await load_report_series(session=session, service_id="openai-api", now=NOW)
    assert series.usual == pytest.approx([2.0] * 96)  # 8 an hour is 2 per 15 min
    assert series.counts == (0,) * 96


async def test_usual_falls_back_to_the_stored_week(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        # The week before the span: one report every 15 min (4 an hour).
        session.add_all(
            report("openai-api", START - k * Q + timedelta(minutes=1), who=f"u{k}")
            for k in range(1, 7 * 96 + 1)
        )
        # A surge inside the span is charted, but is not what "usual" means.
        session.add_all(
            report("openai-api", at(14, 0) + timedelta(seconds=s), who=f"s{s}") for s in range(40)
        )
        await session.commit()
    async with sessions() as session:
        series = await load_report_series(session=session, service_id="openai-api", now=NOW)
    assert series.usual == pytest.approx([1.0] * 96)
    assert series.total == 40
    assert series.counts[series.peak or 0] == 40


async def test_an_unreadable_detector_memory_falls_back_to_the_week(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add(CrowdMemoryRow(service_id="openai-api", memory="{not json", updated_at=NOW))
        session.add_all(
            report("openai-api", START - k * Q, who=f"u{k}") for k in range(1, 7 * 96 + 1)
        )
        await session.commit()
    async with sessions() as session:
        series = await load_report_series(session=session, service_id="openai-api", now=NOW)
    assert series.usual == pytest.approx([1.0] * 96)


def a_series(
    counts: dict[int, int] | None = None,
    *,
    usual: float = 2.0,
    incidents: tuple[IncidentWindow, ...] = (),
) -> ReportSeries:
    values = [0] * 96
    for index, count in (counts or {}).items():
        values[index] = count
    return ReportSeries(
        service_id="openai-api",
        start=START,
        end=NOW,
        bucket=Q,
        counts=tuple(values),
        usual=(usual,) * 96,
        incidents=incidents,
    )


def at(hour: int, minute: int, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def index_of(moment: datetime) -> int:
    return round((moment - START) / Q)


def test_alt_text_states_peak_usual_and_incidents() -> None:
    series = a_series(
        {index_of(at(14, 15)): 38, index_of(at(14, 30)): 20, 3: 1},
        incidents=(IncidentWindow(at(13, 50), at(15, 10)),),
    )
    assert describe(series) == (
        "Reports per 15 min over the last 24 h: peak 38 at 14:15 UTC, usual 2; "
        "official incident 13:50–15:10 shaded"
    )


def test_alt_text_for_quiet_days_open_and_old_incidents() -> None:
    assert describe(a_series(usual=0.42)) == (
        "Reports per 15 min over the last 24 h: none, usual 0.4"
    )
    many = (
        IncidentWindow(at(9, 0, day=26), at(17, 0, day=26)),  # began before the chart
        IncidentWindow(at(2, 5), at(2, 40)),
        IncidentWindow(at(10, 0), at(11, 0)),
        IncidentWindow(at(15, 50), None),
    )
    text = describe(a_series({0: 3, 1: 3}, usual=0.0, incidents=many))
    assert text == (
        "Reports per 15 min over the last 24 h: peak 3 at 16:15 UTC, usual 0; "
        "official incidents 26 Nov 09:00–17:00, 02:05–02:40, 10:00–11:00 and 1 more shaded"
    )
    assert describe(a_series(incidents=(IncidentWindow(at(15, 50), None),))).endswith(
        "official incident 15:50–now shaded"
    )


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a PNG must start with."""
    assert png[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.mark.parametrize(
    "series",
    [
        a_series({index_of(at(14, 15)): 38}, incidents=(IncidentWindow(at(13, 50), at(15, 10)),)),
        # Worst case for size: every bucket different, several incidents.
        a_series(
            {i: random.Random(i).randrange(500) for i in range(96)},
            incidents=tuple(IncidentWindow(at(h, 0), at(h, 40)) for h in range(0, 15, 3)),
        ),
        a_series(incidents=(IncidentWindow(at(15, 50), None),)),  # an incident, no reports
    ],
    ids=["outage", "busy", "no-reports"],
)
def test_chart_is_a_small_800_by_300_png(series: ReportSeries) -> None:
    chart = render_report_chart(series)
    assert png_size(chart.png) == (800, 300)
    assert 2_000 < len(chart.png) < MAX_PNG_BYTES
    assert chart.alt == describe(series)


def test_the_same_data_draws_the_same_bytes() -> None:
    series = a_series({5: 4}, incidents=(IncidentWindow(at(13, 50), at(15, 10)),))
    assert render_report_chart(series).png == render_report_chart(series).png


@pytest.fixture
async def deps(engine: AsyncEngine) -> AppDeps:
    sessions = session_factory(engine)
    async with sessions() as session:
        session.add_all(report("openai-api", at(14, 15 + m), who=f"p{m}") for m in range(12))
        session.add_all(report("gemini", at(14, 15 + m), who=f"p{m}") for m in range(3))
        await session.commit()
    return AppDeps(catalog=CATALOG, sessions=sessions, registry=CommandRegistry())


async def chart_of(deps: AppDeps, service_id: str, *, now: datetime) -> Chart | None:
    """The 24 h report chart of a service, as /status and the dashboard get it."""
    return (await deps.report_activity(service_id, now=now)).chart


class CountingRenderer:
    """The real renderer, counting calls and noting the thread each ran on."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.threads: set[int] = set()

    def __call__(self, series: ReportSeries) -> Chart:
        self.calls.append(series.service_id)
        self.threads.add(threading.get_ident())
        return render_report_chart(series)


async def test_chart_is_built_once_per_service_and_minute(deps: AppDeps, clock: FakeClock) -> None:
    renderer = CountingRenderer()
    deps = replace(deps, report_charts=ReportCharts(render=renderer))
    clock.now = NOW
    first = await chart_of(deps, "openai-api", now=clock.now)
    assert first is not None
    assert png_size(first.png) == (800, 300)
    assert first.alt.startswith("Reports per 15 min over the last 24 h: peak 12 at 14:15 UTC")
    same_minute = await chart_of(deps, "openai-api", now=clock.advance(seconds=25))
    assert same_minute is first
    assert renderer.calls == ["openai-api"]

    clock.advance(seconds=10)  # 16:08:05: a new minute
    later = await chart_of(deps, "openai-api", now=clock.now)
    assert later is not None
    assert later is not first
    assert renderer.calls == ["openai-api", "openai-api"]


async def test_concurrent_askers_share_one_render(deps: AppDeps) -> None:
    renderer = CountingRenderer()
    deps = replace(deps, report_charts=ReportCharts(render=renderer))
    charts = await asyncio.gather(*(chart_of(deps, "openai-api", now=NOW) for _ in range(20)))
    assert renderer.calls == ["openai-api"]
    assert all(c is charts[0] for c in charts)


async def test_cache_keeps_only_the_most_recently_asked_services(deps: AppDeps) -> None:
    renderer = CountingRenderer()
    charts = ReportCharts(render=renderer, max_services=1)
    await charts.activity(deps.sessions, "openai-api", now=NOW)
    await charts.activity(deps.sessions, "gemini", now=NOW)
    assert len(charts) == 1
    await charts.activity(deps.sessions, "gemini", now=NOW)  # kept
    await charts.activity(deps.sessions, "openai-api", now=NOW)  # dropped, so drawn again
    assert renderer.calls == ["openai-api", "gemini", "openai-api"]


async def test_rendering_runs_off_the_event_loop(deps: AppDeps) -> None:
    loop_thread = threading.get_ident()
    drawing, release = threading.Event(), threading.Event()
    renderer = CountingRenderer()

    def slow(series: ReportSeries) -> Chart:
        drawing.set()
        release.wait(timeout=30)  # held until the loop shows it kept running
        return renderer(series)

    charts = ReportCharts(render=slow)
    pending = asyncio.ensure_future(charts.activity(deps.sessions, "openai-api", now=NOW))
    assert await asyncio.to_thread(drawing.wait, 30)
    # The renderer is mid-draw, and the loop still serves other work, database queries included.
    assert not pending.done()
    async with deps.sessions() as session:
        other = await load_report_series(session=session, service_id="gemini", now=NOW)
    assert other.total == 3
    assert not pending.done()
    release.set()
    activity = await pending
    assert activity.chart is not None
    assert renderer.calls == ["openai-api"]
    assert loop_thread not in renderer.threads


async def test_quiet_service_gets_no_chart_and_no_render(engine: AsyncEngine) -> None:
    renderer = CountingRenderer()
    deps = AppDeps(catalog=CATALOG, sessions=session_factory(engine), registry=CommandRegistry())
    deps = replace(deps, report_charts=ReportCharts(render=renderer))
    assert await chart_of(deps, "openai-api", now=NOW) is None
    assert renderer.calls == []


async def test_a_failing_renderer_is_logged_and_gives_no_chart(
    deps: AppDeps, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(series: ReportSeries) -> Chart:
        raise RuntimeError("no fonts")

    deps = replace(deps, report_charts=ReportCharts(render=broken))
    activity = await deps.report_activity("openai-api", now=NOW)
    assert activity.chart is None
    assert activity.series.total == 12  # the numbers are still there for the text
    assert "drawing the report chart of openai-api failed" in caplog.text


async def test_each_app_has_its_own_chart_cache(engine: AsyncEngine) -> None:
    deps = AppDeps(catalog=CATALOG, sessions=session_factory(engine), registry=CommandRegistry())
    other = AppDeps(catalog=CATALOG, sessions=deps.sessions, registry=CommandRegistry())
    assert deps.report_charts is not other.report_charts
    with pytest.raises(ValueError, match="max_services"):
        ReportCharts(max_services=0)


def test_matplotlib_loads_only_when_a_chart_is_drawn() -> None:
    # It adds about 55 MB to the process; loading cogs (every process does) must not pull it in.
    probe = "import sys, cogs.status, bot.charts.service_chart; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
