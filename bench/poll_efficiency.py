"""CPU per poll of the real pipeline vs. bare aiohttp conditional GETs of the same URLs.

Pipeline: StatusPoller + HttpFetcher + HttpProber on a real aiohttp session, a migrated database
(SQLite in a temp dir; PostgreSQL too when TEST_DATABASE_URL is set), one statuspage source per
page. The fake pages run in a child process, so the CPU measured (time.process_time of this
process, all its threads, aiosqlite's included) is the client's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from _common import (
    ENDPOINTS,
    Farm,
    Profile,
    databases,
    farm_layout,
    print_profile,
    profile_work,
    statuspage_catalog,
    varied_page,
    write_result,
)
from aiohttp import hdrs

from bot.core.timeutil import system_clock
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.statuspage_merge import part_urls
from bot.store import migrate, repository
from bot.store.engine import create_engine, session_factory

NAME = "poll_efficiency"
USER_AGENT = "outagebot-bench/poll-efficiency"
RATIO_TARGET, HIT_TARGET = 1.5, 0.95
SERVERS = 4  # fake hosts the pages are spread over


@dataclass(frozen=True, slots=True)
class Round:
    cpu_s: float
    wall_s: float
    answers: dict[str, int]  # what the farm answered, '<endpoint> <status>' -> count

    def hit_rate(self) -> float:
        hits = sum(n for key, n in self.answers.items() if key.endswith(" 304"))
        return hits / max(1, sum(self.answers.values()))


class BareClient:
    """Conditional GETs of each page's summary, components and incidents, nothing else; with a
    fetcher, through HttpFetcher instead (a diagnostic of the HTTP layer's share)."""

    def __init__(self, session: aiohttp.ClientSession, fetcher: HttpFetcher | None = None) -> None:
        self._session, self._fetcher = session, fetcher
        self._limit = asyncio.Semaphore(32)  # StatusPoller's default max_concurrency
        self._timeout = aiohttp.ClientTimeout(total=10.0)
        self._validators: dict[str, tuple[str | None, str | None]] = {}

    async def poll_all(self, urls: list[str]) -> None:
        await asyncio.gather(*(self._page(url) for url in urls))

    async def _page(self, summary_url: str) -> None:
        async with self._limit:
            for url in (summary_url, *part_urls(summary_url)):
                await self._get(url)

    async def _get(self, url: str) -> None:
        etag, modified = self._validators.get(url, (None, None))
        if self._fetcher is not None:
            result = await self._fetcher.get(url, etag=etag, last_modified=modified)
            self._validators[url] = (result.etag, result.last_modified)
            return
        headers = {hdrs.ACCEPT: "application/json"}
        if etag:
            headers[hdrs.IF_NONE_MATCH] = etag
        if modified:
            headers[hdrs.IF_MODIFIED_SINCE] = modified
        async with self._session.get(
            url, headers=headers, timeout=self._timeout, raise_for_status=False
        ) as response:
            if response.status == 200:
                await response.read()
                self._validators[url] = (
                    response.headers.get(hdrs.ETAG),
                    response.headers.get(hdrs.LAST_MODIFIED),
                )


async def timed(farm: Farm, work: Callable[[], Awaitable[object]]) -> Round:
    gc.collect()
    farm.stats()  # reset the farm's counters
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Round(cpu, wall, farm.stats())


async def measure(
    farm: Farm, urls: list[str], db_url: str, rounds: int
) -> tuple[dict[str, list[Round]], Profile]:
    """Bare, fetcher and pipeline rounds interleaved (cold first) so drift hits all alike."""
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        catalog = statuspage_catalog(urls)
        async with sessions() as session:
            await repository.sync_catalog(session=session, catalog=catalog)
        async with (
            new_http_session(user_agent=USER_AGENT) as http,
            new_http_session(user_agent=USER_AGENT) as bare_http,
            new_http_session(user_agent=USER_AGENT) as fetcher_http,
        ):
            poller = StatusPoller(
                catalog=catalog,
                sessions=sessions,
                fetcher=HttpFetcher(http),
                prober=HttpProber(http),
                clock=system_clock,
            )
            bare, fetcher = (
                BareClient(bare_http),
                BareClient(fetcher_http, HttpFetcher(fetcher_http)),
            )
            results: dict[str, list[Round]] = {"pipeline": [], "bare": [], "fetcher": []}
            for _ in range(rounds):
                results["bare"].append(await timed(farm, lambda: bare.poll_all(urls)))
                results["fetcher"].append(await timed(farm, lambda: fetcher.poll_all(urls)))
                results["pipeline"].append(await timed(farm, poller.poll_all))
            return results, await profile_work(engine, poller.poll_all, len(urls))
    finally:
        await engine.dispose()


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(label: str, results: dict[str, list[Round]], pages: int) -> dict[str, float]:
    pipe, bare, fetch = results["pipeline"], results["bare"], results["fetcher"]
    gets = pages * len(ENDPOINTS)

    def warm(rounds: list[Round]) -> float:
        return mean([r.cpu_s for r in rounds[1:]])

    figures = {
        "cpu_ms_per_poll_cold": pipe[0].cpu_s * 1000 / pages,
        "cpu_ms_per_poll_warm": warm(pipe) * 1000 / pages,
        "bare_cpu_ms_per_get_cold": bare[0].cpu_s * 1000 / gets,
        "bare_cpu_ms_per_get_warm": warm(bare) * 1000 / gets,
        "bare_cpu_ms_per_page_warm": warm(bare) * 1000 / pages,
        "fetcher_cpu_ms_per_page_warm": warm(fetch) * 1000 / pages,
        "ratio_cold": pipe[0].cpu_s / bare[0].cpu_s,
        "ratio_warm": warm(pipe) / warm(bare),
        "hit_rate_warm": mean([r.hit_rate() for r in pipe[1:]]),
        "wall_s_per_round_cold": pipe[0].wall_s,
        "wall_s_per_round_warm": mean([r.wall_s for r in pipe[1:]]),
        "bare_wall_s_per_round_warm": mean([r.wall_s for r in bare[1:]]),
    }
    print(f"\n[{label}] {pages} pages; CPU ms per page (one poll = summary, components, incidents)")
    print(
        f"{'round':<8}{'pipeline':>9}{'bare':>7}{'fetcher':>8}{'ratio':>7}"
        f"{'pipe wall':>11}{'bare wall':>11}{'pipe 304':>9}{'bare 304':>9}"
    )
    for i, (p, b, f) in enumerate(zip(pipe, bare, fetch, strict=True)):
        print(
            f"{'cold' if i == 0 else f'warm {i}':<8}{p.cpu_s * 1000 / pages:>9.3f}"
            f"{b.cpu_s * 1000 / pages:>7.3f}{f.cpu_s * 1000 / pages:>8.3f}{p.cpu_s / b.cpu_s:>7.2f}"
            f"{p.wall_s:>10.3f}s{b.wall_s:>10.3f}s{p.hit_rate():>9.1%}{b.hit_rate():>9.1%}"
        )
    print(
        f"{'warm avg':<8}{figures['cpu_ms_per_poll_warm']:>9.3f}"
        f"{figures['bare_cpu_ms_per_page_warm']:>7.3f}"
        f"{figures['fetcher_cpu_ms_per_page_warm']:>8.3f}{figures['ratio_warm']:>7.2f}"
    )
    print(f"answers in the last pipeline round: {pipe[-1].answers}")
    return {f"{label}_{key}": round(value, 4) for key, value in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="60 pages, 1 cold + 2 warm rounds")
    parser.add_argument("--pages", type=int, help="fake pages (default 300; quick 60)")
    parser.add_argument("--warm", type=int, help="warm rounds (default 5; quick 2)")
    parser.add_argument("--profile", action="store_true", help="always print the profile")
    args = parser.parse_args()
    pages = args.pages or (60 if args.quick else 300)
    rounds = 1 + (args.warm if args.warm is not None else 2 if args.quick else 5)
    servers = min(SERVERS, pages)
    layout = farm_layout([varied_page(i) for i in range(pages)], servers)

    figures: dict[str, float] = {"pages": pages, "warm_rounds": rounds - 1, "servers": servers}
    profiles: dict[str, Profile] = {}
    with databases() as backends, Farm(layout) as farm:
        urls = [farm.summary_url(i) for i in range(pages)]
        for label, db_url in backends.items():
            results, profiles[label] = asyncio.run(measure(farm, urls, db_url, rounds))
            figures |= summarise(label, results, pages)
            figures[f"{label}_sql_statements_per_warm_poll"] = round(profiles[label].statements, 2)

    ratios = {label: figures[f"{label}_ratio_warm"] for label in profiles}
    hits = {label: figures[f"{label}_hit_rate_warm"] for label in profiles}
    passed = max(ratios.values()) <= RATIO_TARGET and min(hits.values()) >= HIT_TARGET
    print(
        "\nBare = plain aiohttp GETs of exactly the pipeline's URLs (all three endpoints are "
        "served, none 404s), same session settings, concurrency (32) and validators."
    )
    if "postgres" in profiles:
        print("PostgreSQL runs in its own server process: its CPU is not counted; SQLite's is.")
    for label, prof in profiles.items():
        print(
            f"[{label}] a warm poll runs {prof.statements:.1f} SQL statements and "
            f"{prof.sql.get('(commit)', 0):.1f} commits; the event-loop thread does "
            f"{prof.loop_share:.0%} of the CPU (the rest: other threads, e.g. aiosqlite)"
        )
        if args.profile or ratios[label] > RATIO_TARGET:
            print_profile(f"[{label}] one more warm pipeline round", prof)
    write_result(
        NAME, figures, {"ratio_warm_max": RATIO_TARGET, "hit_rate_warm_min": HIT_TARGET}, passed
    )
    worst = max(ratios, key=lambda k: ratios[k])
    print(
        f"poll efficiency ({worst}, {pages} pages): warm CPU per poll {ratios[worst]:.2f}x bare "
        f"GETs of the same URLs (target <= {RATIO_TARGET}), {min(hits.values()):.1%} conditional "
        f"hits (target >= {HIT_TARGET:.0%}): {'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
