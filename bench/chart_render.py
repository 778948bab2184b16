"""The /status report chart: render time, PNG size, and the cost of a chart through the cache.

1. Render: `render_report_chart` on varied 24 h series (a daily wave, a surge, 0-3 incidents;
   a new seed each time), on this thread. Figures: wall and CPU p50/p95 ms, PNG median/max bytes.
2. Facade: `ReportCharts.activity` on a migrated database holding a busy service's last 8 days of
   reports (SQLite, and PostgreSQL when TEST_DATABASE_URL is set): a miss (the GROUP BY query,
   the baseline and the render in a worker thread), and a hit in the same minute, both timed on
   the event loop; with and without a learned detector memory (without it, the query also
   reads the week before the chart).
Targets: render CPU time p95 <= 200 ms (wall time is shown too), every PNG < 60 KB.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import databases, write_result
from bot.charts.model import Chart, IncidentWindow, ReportSeries
from bot.charts.render import render_report_chart
from bot.charts.series import BUCKET, load_report_series
from bot.charts.service_chart import ReportCharts
from bot.core import crowd
from bot.core.crowd_codec import encode_crowd_memory
from bot.store import migrate
from bot.store.crowd_models import CrowdMemoryRow, ReportRow
from bot.store.engine import create_engine, session_factory

NOW = datetime(2026, 11, 27, 16, 7, 30, tzinfo=UTC)
RENDER_P95_MS = 200.0
PNG_MAX_BYTES = 60_000


def wave(hour: float, per_hour: float) -> float:
    """A daily wave peaking at 15:00 UTC, 0.4x to 1.6x the mean."""
    return per_hour * (1 + 0.6 * math.cos((hour - 15) / 24 * 2 * math.pi))


def varied_series(seed: int, per_hour: float) -> ReportSeries:
    rng = random.Random(seed)
    last = NOW.replace(minute=(NOW.minute // 15) * 15, second=0, microsecond=0)
    start = last - 95 * BUCKET
    hours = [(start + i * BUCKET).hour + (start + i * BUCKET).minute / 60 for i in range(96)]
    usual = [wave(h, per_hour) / 4 for h in hours]
    counts = [max(0, round(rng.gauss(u, math.sqrt(u) + 0.5))) for u in usual]
    surge = rng.randrange(96 - 8)
    for i in range(surge, surge + rng.randrange(2, 8)):
        counts[i] += round(usual[i] * rng.uniform(3, 10))
    incidents = []
    for _ in range(rng.randrange(4)):
        began = start + timedelta(minutes=rng.randrange(0, 24 * 60))
        ended = began + timedelta(minutes=rng.randrange(10, 300))
        incidents.append(IncidentWindow(began, None if ended >= NOW else ended))
    return ReportSeries(
        service_id="bench",
        start=start,
        end=NOW,
        bucket=BUCKET,
        counts=tuple(counts),
        usual=tuple(usual),
        incidents=tuple(sorted(incidents, key=lambda w: w.started_at)),
    )


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def render_figures(renders: int) -> dict[str, Any]:
    render_report_chart(varied_series(0, 60))  # font cache and imports: not what is measured
    times, cpu, sizes = [], [], []
    for seed in range(1, renders + 1):
        series = varied_series(seed, per_hour=(15, 60, 240, 1_000)[seed % 4])
        began, began_cpu = time.perf_counter(), time.thread_time()
        chart = render_report_chart(series)
        times.append((time.perf_counter() - began) * 1000)
        cpu.append((time.thread_time() - began_cpu) * 1000)
        sizes.append(len(chart.png))
    return {
        "renders": renders,
        "render_p50_ms": round(percentile(times, 0.5), 1),
        "render_p95_ms": round(percentile(times, 0.95), 1),
        "render_max_ms": round(max(times), 1),
        "render_cpu_p50_ms": round(percentile(cpu, 0.5), 1),
        "render_cpu_p95_ms": round(percentile(cpu, 0.95), 1),
        "png_median_bytes": round(statistics.median(sizes)),
        "png_max_bytes": max(sizes),
    }


async def facade_figures(url: str, *, per_hour: int, rounds: int) -> dict[str, Any]:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    rng = random.Random(5)
    begin = NOW - timedelta(days=8)
    rows = []
    moment = begin
    while moment < NOW:  # Poisson arrivals following the daily wave
        hour = moment.hour + moment.minute / 60
        moment += timedelta(hours=rng.expovariate(wave(hour, per_hour)))
        rows.append(
            ReportRow(
                service_id="busy",
                what="errors",
                reporter_hash=f"u{rng.randrange(10**6)}",
                platform="discord",
                community_id=f"g{rng.randrange(200)}",
                at=moment,
            )
        )
    async with sessions() as session:
        session.add_all(r for r in rows if r.at < NOW)
        await session.commit()
    figures: dict[str, Any] = {"reports_stored": len(rows)}
    drawing: list[float] = []  # render wall time inside the worker thread

    def timed(series: ReportSeries) -> Chart:
        began = time.perf_counter()
        try:
            return render_report_chart(series)
        finally:
            drawing.append((time.perf_counter() - began) * 1000)

    for memory in ("week", "learned"):
        if memory == "learned":
            async with sessions() as session:
                learned = crowd.learn_history(
                    crowd.CrowdMemory(),
                    [(NOW - timedelta(hours=h), per_hour) for h in range(168, 0, -1)],
                    config=crowd.CrowdConfig(),
                )
                session.add(
                    CrowdMemoryRow(
                        service_id="busy", memory=encode_crowd_memory(learned), updated_at=NOW
                    )
                )
                await session.commit()
        misses, hits = [], []
        drawing.clear()
        for n in range(rounds):
            charts = ReportCharts(render=timed)
            now = NOW - timedelta(minutes=n)
            began = time.perf_counter()
            await charts.activity(sessions, "busy", now=now)
            misses.append((time.perf_counter() - began) * 1000)
            began = time.perf_counter()
            await charts.activity(sessions, "busy", now=now)
            hits.append((time.perf_counter() - began) * 1000)
        queries = []
        for n in range(rounds):
            began = time.perf_counter()
            async with sessions() as session:
                await load_report_series(
                    session=session, service_id="busy", now=NOW - timedelta(minutes=n)
                )
            queries.append((time.perf_counter() - began) * 1000)
        figures |= {
            f"{memory}_query_p50_ms": round(percentile(queries, 0.5), 1),
            f"{memory}_miss_p50_ms": round(percentile(misses, 0.5), 1),
            f"{memory}_miss_render_p50_ms": round(percentile(drawing, 0.5), 1),
            f"{memory}_miss_p95_ms": round(percentile(misses, 0.95), 1),
            f"{memory}_hit_p50_ms": round(percentile(hits, 0.5), 3),
        }
    await engine.dispose()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="40 renders, 60 reports/h, 5 rounds")
    args = parser.parse_args()
    renders, per_hour, rounds = (40, 60, 5) if args.quick else (300, 240, 20)
    figures = render_figures(renders)
    print("render (this thread):")
    for key, value in figures.items():
        print(f"  {key:22} {value}")
    with databases() as urls:
        for name, url in urls.items():
            result = asyncio.run(facade_figures(url, per_hour=per_hour, rounds=rounds))
            print(f"{name}, busy service ({per_hour}/h, 8 days stored), through ReportCharts:")
            for key, value in result.items():
                print(f"  {key:22} {value}")
                figures[f"{name}_{key}"] = value
    # The target is on CPU time: wall time on a shared 2-core machine mostly measures the others.
    passed = (
        figures["render_cpu_p95_ms"] <= RENDER_P95_MS and figures["png_max_bytes"] < PNG_MAX_BYTES
    )
    targets = {"render_cpu_p95_ms_max": RENDER_P95_MS, "png_bytes_below": PNG_MAX_BYTES}
    write_result("chart_render", figures, targets, passed)
    print(
        f"chart render: CPU p50 {figures['render_cpu_p50_ms']} ms, "
        f"p95 {figures['render_cpu_p95_ms']} ms (wall p95 {figures['render_p95_ms']} ms), "
        f"PNG max {figures['png_max_bytes'] / 1000:.1f} KB; cache miss on SQLite p50 "
        f"{figures['sqlite_learned_miss_p50_ms']} ms, hit {figures['sqlite_learned_hit_p50_ms']}"
        f" ms (targets: CPU p95 <= {RENDER_P95_MS:.0f} ms, PNG < 60 KB): "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
