"""Status-page change -> INCIDENT_OPENED committed, with the real poll schedule on the real clock.

One fake page (plus calm background pages) is served from a child process. At a random moment
the page flips from calm to an open major incident; the real StatusPoller, driven by
bot.runtime.poll_schedule.PollSchedule as the app drives it, on a migrated SQLite database, reads
it. Latency = the flip (the farm's clock, once the new bodies are served) to the poller's
on_events callback, which runs after the transaction holding the event has committed.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from operator import contains
from pathlib import Path
from typing import Any

from _common import (
    BASE_FIXTURES,
    Farm,
    farm_layout,
    fixture,
    page_files,
    polled_on_schedule,
    statuspage_catalog,
    varied_page,
    write_result,
)

from bot.core.events import DetectionEvent, EventKind
from bot.core.timeutil import system_clock
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import catalog_store, migrate
from bot.store.engine import create_engine, session_factory

NAME = "detection_latency"
FLIP_PAGE, FLIP_SERVICE = 0, "s0"  # statuspage_catalog names page i's service s<i>
GITHUB = fixture(BASE_FIXTURES[0])  # its incident is a real open major one


def calm_summary() -> dict[str, Any]:
    summary = copy.deepcopy(GITHUB)
    summary["incidents"] = []
    summary["status"] = {"indicator": "none", "description": "All Systems Operational"}
    for component in summary["components"]:
        component["status"] = "operational"
    return summary


def incident_files(incident_id: str, *, resolved: bool) -> dict[str, bytes]:
    """The page with a fresh major incident open (or, resolved, gone from the summary)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    incident = copy.deepcopy(GITHUB["incidents"][0])
    update = copy.deepcopy(incident["incident_updates"][-1])
    incident |= {"id": incident_id, "name": f"Bench incident {incident_id}", "impact": "major"}
    incident |= {"status": "investigating", "created_at": now, "started_at": now}
    incident |= {"updated_at": now, "resolved_at": None}
    update |= {"id": f"{incident_id}-u1", "incident_id": incident_id, "status": "investigating"}
    update |= {"created_at": now, "updated_at": now, "display_at": now}
    incident["incident_updates"] = [update]
    summary = calm_summary()
    if resolved:
        resolution = update | {"id": f"{incident_id}-u2", "status": "resolved", "body": "Fixed."}
        incident |= {"status": "resolved", "resolved_at": now, "updated_at": now}
        incident["incident_updates"] = [resolution, update]
    else:
        summary["incidents"] = [incident]
        summary["status"] = {"indicator": "major", "description": "Major Service Outage"}
    files = page_files(summary)
    files["incidents.json"] = page_files({"page": summary["page"], "incidents": [incident]})[
        "incidents.json"
    ]
    return files


async def wait_until(condition: Callable[[], bool], arrived: asyncio.Event, limit: float) -> bool:
    """Wait (at most `limit` s) until `condition` holds, re-checking each time events arrive."""
    try:
        async with asyncio.timeout(limit):
            while not condition():
                await arrived.wait()
                arrived.clear()
    except TimeoutError:
        return False
    return True


async def run(
    farm: Farm, urls: Sequence[str], interval: float, trials: int, rng: random.Random
) -> list[float | None]:
    """Latency per trial (None: not seen in time)."""
    opened: dict[str, float] = {}
    resolved: set[str] = set()
    arrived = asyncio.Event()

    def on_events(events: Sequence[DetectionEvent]) -> None:
        moment = time.monotonic()
        for event in events:
            if event.service_id == FLIP_SERVICE and event.incident_id is not None:
                if event.kind is EventKind.INCIDENT_OPENED:
                    opened.setdefault(event.incident_id, moment)
                elif event.kind is EventKind.INCIDENT_RESOLVED:
                    resolved.add(event.incident_id)
        arrived.set()

    latencies: list[float | None] = []
    with tempfile.TemporaryDirectory(prefix="outagebot-bench-") as tmp:
        engine = create_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        try:
            await migrate.upgrade(engine)
            sessions = session_factory(engine)
            catalog = statuspage_catalog(urls)
            async with sessions() as session:
                await catalog_store.sync_catalog(session=session, catalog=catalog)
            async with new_http_session(user_agent="outagebot-bench/detection-latency") as http:
                poller = StatusPoller(
                    catalog=catalog,
                    sessions=sessions,
                    fetcher=HttpFetcher(http),
                    prober=HttpProber(http),
                    clock=system_clock,
                    on_events=on_events,
                )
                limit = 3 * interval + 10
                async with polled_on_schedule(poller, interval):
                    await asyncio.sleep(1.5 * interval + 5.5)  # every page read once, calm
                    for trial in range(trials):
                        await asyncio.sleep(rng.uniform(0, interval))  # random phase
                        incident = f"bench{trial:03d}{rng.randrange(16**6):06x}"
                        flipped = farm.set_page(FLIP_PAGE, incident_files(incident, resolved=False))
                        seen = await wait_until(partial(contains, opened, incident), arrived, limit)
                        latencies.append(opened[incident] - flipped if seen else None)
                        shown = f"{opened[incident] - flipped:.3f} s" if seen else "NOT SEEN"
                        print(f"trial {trial + 1:>3}: flip -> INCIDENT_OPENED committed {shown}")
                        farm.set_page(FLIP_PAGE, incident_files(incident, resolved=True))
                        await wait_until(partial(contains, resolved, incident), arrived, limit)
        finally:
            await engine.dispose()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1 s interval, 8 trials")
    parser.add_argument("--interval", type=float, help="poll interval, s (default 2; quick 1)")
    parser.add_argument("--trials", type=int, help="flips (default 30; quick 8)")
    parser.add_argument("--background", type=int, help="calm pages besides (default 20; quick 5)")
    parser.add_argument("--seed", type=int, default=20261127, help="random seed")
    args = parser.parse_args()
    interval = args.interval or (1.0 if args.quick else 2.0)
    trials = args.trials or (8 if args.quick else 30)
    background = args.background if args.background is not None else 5 if args.quick else 20
    pages = [page_files(calm_summary())] + [varied_page(i) for i in range(1, background + 1)]

    with Farm(farm_layout(pages, servers=2)) as farm:
        urls = [farm.summary_url(i) for i in range(len(pages))]
        latencies = asyncio.run(run(farm, urls, interval, trials, random.Random(args.seed)))

    seen = sorted(x for x in latencies if x is not None)
    missed = len(latencies) - len(seen)
    target = interval + 1.0
    quantiles = statistics.quantiles(seen, n=20, method="inclusive") if len(seen) > 1 else []
    p50 = statistics.median(seen) if seen else float("nan")
    p95 = quantiles[18] if quantiles else (seen[0] if seen else float("nan"))
    worst = seen[-1] if seen else float("nan")
    passed = missed == 0 and p95 <= target
    figures = {
        "poll_interval_s": interval,
        "trials": trials,
        "background_pages": background,
        "missed": missed,
        "latency_p50_s": round(p50, 4),
        "latency_p95_s": round(p95, 4),
        "latency_max_s": round(worst, 4),
        "latency_mean_s": round(statistics.fmean(seen), 4) if seen else float("nan"),
    }
    print(f"\n{'figure':<28}{'value':>10}")
    for key, value in figures.items():
        print(f"{key:<28}{value:>10}")
    print(f"{'target: p95 <=':<28}{target:>10.3f}")
    print(
        f"(PollSchedule reads each page once every {interval:g} s at a slot of its own, so a flip "
        f"waits up to {interval:g} s for the next poll.)"
    )
    write_result(NAME, figures, {"latency_p95_max_s": target, "missed_max": 0}, passed)
    print(
        f"detection latency (interval {interval:g} s, {len(seen)}/{trials} seen): p95 {p95:.2f} s,"
        f" p50 {p50:.2f} s, max {worst:.2f} s (target p95 <= {target:g} s): "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
