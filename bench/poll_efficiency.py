"""CPU and memory per poll of the real pipeline vs. bare aiohttp conditional GETs of the same URLs.

Pipeline: StatusPoller + HttpFetcher + HttpProber on a real aiohttp session, a migrated database
(SQLite in a temp dir; PostgreSQL too when TEST_DATABASE_URL is set), the app's metrics, one
statuspage source per page, driven by the app's PollSchedule (each page at its slot). The fake
pages run in a child process, so the CPU measured (time.process_time of this process, all its
threads, aiosqlite's included) is the client's alone. Each (pages, database) case runs in a
forked worker of its own, so its memory figures start clean. A round is one 30 s interval played
in a few real seconds (`ScheduledRounds`), so "last checked" is written as often as at a 30 s
interval (once a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import multiprocessing
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection

import aiohttp
from _common import (
    ENDPOINTS,
    Farm,
    Layout,
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
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.app import CHECKED_GATHER_SECONDS
from bot.runtime.heap import settle_startup_heap
from bot.runtime.metrics import Metrics
from bot.runtime.poll_schedule import PollSchedule, slot_phase
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.statuspage_merge import part_urls
from bot.store import catalog_store, migrate
from bot.store.engine import create_engine, session_factory

NAME = "poll_efficiency"
USER_AGENT = "outagebot-bench/poll-efficiency"
RATIO_TARGET, HIT_TARGET = 1.2, 0.95
CORE_TARGET, RSS_TARGET_MB = 0.5, 300.0  # share of one core at a 30 s interval; peak RSS
INTERVAL_S = 30.0
READS_TOLERANCE = 0.05  # a round on real time reads each page once, give or take its edges
SCALE_PAGES = (3000, 10000)
SERVERS = 4  # fake hosts for up to 400 pages; one more per 100 pages beyond, up to 64


class BenchClock:
    """Real time that the bench stops while the bare GETs run, so the schedule starts no poll
    then; `scaled` is the same time sped up (the poller's, see `ScheduledRounds`)."""

    def __init__(self) -> None:
        self._origin, self._started = datetime.now(UTC), time.monotonic()
        self._stopped_at: float | None = time.monotonic()  # stopped until the first round
        self._lost = 0.0

    def elapsed(self) -> float:
        moment = self._stopped_at if self._stopped_at is not None else time.monotonic()
        return moment - self._started - self._lost

    def __call__(self) -> datetime:
        return self._origin + timedelta(seconds=self.elapsed())

    def scaled(self, factor: float) -> Callable[[], datetime]:
        return lambda: self._origin + timedelta(seconds=self.elapsed() * factor)

    def go(self) -> None:
        if self._stopped_at is not None:
            self._lost += time.monotonic() - self._stopped_at
            self._stopped_at = None

    def stop(self) -> None:
        if self._stopped_at is None:
            self._stopped_at = time.monotonic()


class ScheduledRounds:
    """The poller driven as the app drives it: `PollSchedule.run`, on real time, each page at
    its slot. One 30 s interval is played in `round_s` real seconds (3 s for 3,000 pages), and
    the poller's clock runs that much faster, so "last checked" is written once a minute of its
    time, as at 30 s. A round is one such interval: the polls its slots started, finished."""

    def __init__(
        self, poller_of: Callable[[Callable[[], datetime], float], StatusPoller], pages: int
    ) -> None:
        self.round_s = max(3.0, pages / 1000)
        self._clock = BenchClock()
        speed = INTERVAL_S / self.round_s
        # The poller's time runs `speed` times faster; its "last checked" writes gather for as
        # long in its time as the app's do (they wait on real time).
        self.poller = poller_of(self._clock.scaled(speed), CHECKED_GATHER_SECONDS / speed)
        self._polls = PollSchedule(
            self.poller.poll,
            self.poller.urls,
            interval_seconds=self.round_s,
            clock=self._clock,
            first_run=self._clock(),  # every page at once at the start, as a server does
            spread_seconds=0,
            slot_seconds=self.round_s / INTERVAL_S,  # the app's 1 s, in this round's time
        )
        self._running: asyncio.Task[None] | None = None

    async def cold(self) -> None:
        """Every page read once, at start."""
        await asyncio.gather(*self._polls.start_due(self._clock()))
        self._running = asyncio.create_task(self._polls.run())

    async def round(self) -> None:
        self._clock.go()
        await asyncio.sleep(self.round_s)
        self._clock.stop()
        await self.poller.drain(grace_seconds=60)  # the polls started in time, finished

    async def settle(self) -> None:
        """Two rounds after the cold one, unmeasured: the cold round's pages are all overdue
        when the schedule starts; from then on each reads at its slot, once per round."""
        for _ in range(2):
            await self.round()

    async def close(self) -> None:
        self._polls.close()
        if self._running is not None:
            await self._running
        await self.poller.drain(grace_seconds=60)  # a poll its last turn started, and writes


def memory_mb() -> dict[str, float]:
    """This process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    figures = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                figures[key] = int(value.split()[0]) / 1024
    return figures


@dataclass(frozen=True, slots=True)
class Round:
    cpu_s: float
    wall_s: float
    answers: dict[str, int]  # what the farm answered, '<endpoint> <status>' -> count
    commits: int = 0  # transactions the pipeline committed ("last checked" writes, when warm)

    def reads_per_page(self, pages: int) -> float:
        """How many times each page was read in the round (1.0: each once, as intended)."""
        return sum(self.answers.values()) / (pages * len(ENDPOINTS))

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

    async def spread(self, urls: list[str], round_s: float) -> None:
        """The same GETs at the moments the app's schedule reads each page: its slot (a hash
        of the URL on a grid of 1 s in 30) within a round of `round_s` real seconds. A plain
        loop, not PollSchedule: reads spread over time cost more each than one burst of all
        (fewer sockets ready per turn of the event loop), and this is that cost without ours."""
        started = time.monotonic()
        grid = round_s / INTERVAL_S  # the app's 1 s slots, in this round's time
        at = sorted((slot_phase(url, round_s, grid), url) for url in urls)
        running: set[asyncio.Task[None]] = set()
        for offset, url in at:
            delay = started + offset - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self._page(url))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)

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


async def timed(
    farm: Farm, work: Callable[[], Awaitable[object]], commits: Callable[[], int] = lambda: 0
) -> Round:
    gc.collect()
    farm.stats()  # reset the farm's counters
    committed = commits()
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Round(cpu, wall, farm.stats(), commits() - committed)


class CommitCounter:
    """Counts the engine's commits: which warm rounds wrote "last checked" is measured, not
    assumed from their order (the round a page's minute falls due in depends on the clock)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "commit", self._committed)

    def _committed(self, _connection: object) -> None:
        self.count += 1

    def __call__(self) -> int:
        return self.count


async def measure(
    farm: Farm, urls: list[str], db_url: str, rounds: int
) -> tuple[dict[str, list[Round]], dict[str, float], Profile]:
    """Pipeline, bare and fetcher rounds interleaved (cold first) so drift hits all alike.

    The pipeline goes first in each round, so the memory read after its cold round holds the
    poller's state and peak before any bare GET ran; the figures at the end hold everything.
    """
    memory = {"rss_start_mb": memory_mb()["VmRSS"]}
    engine = create_engine(db_url)
    try:
        await migrate.upgrade(engine)
        sessions = session_factory(engine)
        catalog = statuspage_catalog(urls)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        commits = CommitCounter(engine)
        async with (
            new_http_session(user_agent=USER_AGENT) as http,
            new_http_session(user_agent=USER_AGENT) as bare_http,
            new_http_session(user_agent=USER_AGENT) as fetcher_http,
        ):
            metrics = Metrics()
            scheduled = ScheduledRounds(
                lambda clock, gather: StatusPoller(
                    catalog=catalog,
                    sessions=sessions,
                    fetcher=HttpFetcher(http),
                    prober=HttpProber(http),
                    clock=clock,
                    interval_seconds=INTERVAL_S,
                    on_poll=metrics.poll_done,  # as the app counts and times every poll
                    checked_gather_seconds=gather,
                ),
                len(urls),
            )
            bare, fetcher = (
                BareClient(bare_http),
                BareClient(fetcher_http, HttpFetcher(fetcher_http)),
            )
            results: dict[str, list[Round]] = {
                "pipeline": [],
                "bare": [],
                "bare_spread": [],
                "fetcher": [],
            }
            settle_startup_heap()  # as the app does once it has started, before it polls
            for index in range(rounds):
                if index == 1:
                    await scheduled.settle()
                results["pipeline"].append(
                    await timed(farm, scheduled.round if index else scheduled.cold, commits)
                )
                if not index:
                    after_cold = memory_mb()
                    memory |= {
                        "poller_rss_after_cold_mb": after_cold["VmRSS"],
                        "poller_peak_rss_mb": after_cold["VmHWM"],
                    }
                results["bare"].append(await timed(farm, lambda: bare.poll_all(urls)))
                results["bare_spread"].append(
                    await timed(farm, lambda: bare.spread(urls, scheduled.round_s))
                )
                results["fetcher"].append(await timed(farm, lambda: fetcher.poll_all(urls)))
            end = memory_mb()
            memory |= {"rss_end_mb": end["VmRSS"], "peak_rss_end_mb": end["VmHWM"]}

            async def two_more_rounds() -> None:  # one writes "last checked", one does not
                for _ in range(2):
                    await scheduled.round()

            profile = await profile_work(engine, two_more_rounds, 2 * len(urls))
            await scheduled.close()
            return results, memory, profile
    finally:
        await engine.dispose()


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def summarise(
    label: str, results: dict[str, list[Round]], memory: dict[str, float], pages: int
) -> dict[str, float]:
    pipe, burst, fetch = results["pipeline"], results["bare"], results["fetcher"]
    bare = results["bare_spread"]  # the same GETs at the same moments: the yardstick
    gets = pages * len(ENDPOINTS)
    # A round played on real time reads each page once give or take the polls at its edges:
    # its CPU is counted per page read, as if it had read each exactly once.
    reads = [r.reads_per_page(pages) for r in pipe]
    pipe = [replace(r, cpu_s=r.cpu_s / max(n, 1e-9)) for r, n in zip(pipe, reads, strict=True)]

    # A round that writes "last checked" commits a batch every 2 s of its time; the others
    # only the odd page whose minute fell at the round's edge.
    busiest = max((r.commits for r in pipe[1:]), default=0)
    writing = [r.commits > busiest / 2 for r in pipe]

    def warm(rounds: list[Round], writes: bool | None = None) -> float:
        """Mean CPU of the warm rounds; only those in which the pipeline wrote "last
        checked" (due every second round at 30 s), or only those in which it did not."""
        picked = [r for i, r in enumerate(rounds) if i and (writes is None or writes == writing[i])]
        return mean([r.cpu_s for r in picked])

    figures = (
        {
            "cpu_ms_per_poll_cold": pipe[0].cpu_s * 1000 / pages,
            "cpu_ms_per_poll_warm": warm(pipe) * 1000 / pages,
            "cpu_ms_per_poll_quiet_rounds": warm(pipe, writes=False) * 1000 / pages,
            "cpu_ms_per_poll_checked_rounds": warm(pipe, writes=True) * 1000 / pages,
            "bare_cpu_ms_per_get_cold": burst[0].cpu_s * 1000 / gets,
            "bare_cpu_ms_per_get_warm": warm(bare) * 1000 / gets,
            "bare_cpu_ms_per_page_warm": warm(bare) * 1000 / pages,
            "fetcher_cpu_ms_per_page_warm": warm(fetch) * 1000 / pages,
            "ratio_cold": pipe[0].cpu_s / burst[0].cpu_s,  # both read every page at once
            "ratio_warm": warm(pipe) / warm(bare),
            "burst_cpu_ms_per_page_warm": warm(burst) * 1000 / pages,
            "ratio_warm_vs_burst": warm(pipe) / warm(burst),
            "core_share_at_30s": warm(pipe) / INTERVAL_S,
            "bare_core_share_at_30s": warm(bare) / INTERVAL_S,
            "hit_rate_warm": mean([r.hit_rate() for r in pipe[1:]]),
            "reads_per_page_warm_min": min(reads[1:]),
            "reads_per_page_warm_max": max(reads[1:]),
            "wall_s_per_round_cold": pipe[0].wall_s,
            "wall_s_per_round_warm": mean([r.wall_s for r in pipe[1:]]),
            "bare_wall_s_per_round_warm": mean([r.wall_s for r in bare[1:]]),
        }
        | memory
    )
    print(f"\n[{label}] {pages} pages; CPU ms per page (one poll = summary, components, incidents)")
    print(
        f"{'round':<8}{'pipeline':>9}{'bare':>7}{'burst':>7}{'fetcher':>8}{'ratio':>7}"
        f"{'pipe wall':>11}{'bare wall':>11}{'pipe 304':>9}{'bare 304':>9}{'reads':>7}"
        f"{'writes':>8}"
    )
    for i, (p, b, u, f) in enumerate(zip(pipe, bare, burst, fetch, strict=True)):
        print(
            f"{'cold' if i == 0 else f'warm {i}':<8}{p.cpu_s * 1000 / pages:>9.3f}"
            f"{b.cpu_s * 1000 / pages:>7.3f}{u.cpu_s * 1000 / pages:>7.3f}"
            f"{f.cpu_s * 1000 / pages:>8.3f}{p.cpu_s / b.cpu_s:>7.2f}"
            f"{p.wall_s:>10.3f}s{b.wall_s:>10.3f}s{p.hit_rate():>9.1%}{b.hit_rate():>9.1%}"
            f"{reads[i]:>7.3f}{p.commits:>8}"
        )
    print(
        f"{'warm avg':<8}{figures['cpu_ms_per_poll_warm']:>9.3f}"
        f"{figures['bare_cpu_ms_per_page_warm']:>7.3f}"
        f"{figures['burst_cpu_ms_per_page_warm']:>7.3f}"
        f"{figures['fetcher_cpu_ms_per_page_warm']:>8.3f}{figures['ratio_warm']:>7.2f}"
    )
    print(
        "bare: the same GETs at the same slots; burst: all pages at once, 32 at a time (the "
        f"old yardstick): pipeline / burst {figures['ratio_warm_vs_burst']:.2f}x"
    )
    print(
        f'pipeline CPU ms per page in rounds that write "last checked" '
        f"{figures['cpu_ms_per_poll_checked_rounds']:.3f}, in the others "
        f"{figures['cpu_ms_per_poll_quiet_rounds']:.3f}"
    )
    print(
        f"at a {INTERVAL_S:g} s interval: {figures['core_share_at_30s']:.1%} of one core "
        f"(bare GETs {figures['bare_core_share_at_30s']:.1%}); RSS at start "
        f"{memory['rss_start_mb']:.0f} MB, after the poller's cold round "
        f"{memory['poller_rss_after_cold_mb']:.0f} MB (peak {memory['poller_peak_rss_mb']:.0f} "
        f"MB), at the end with the bare harness {memory['rss_end_mb']:.0f} MB "
        f"(peak {memory['peak_rss_end_mb']:.0f} MB)"
    )
    print(f"answers in the last pipeline round: {pipe[-1].answers}")
    return {f"{label}_{key}": round(value, 4) for key, value in figures.items()}


def run_case(
    conn: Connection, farm: Farm, urls: list[str], db_url: str, rounds: int, label: str, show: bool
) -> None:
    """One (pages, database) case, in a forked worker: sends back its figures."""
    results, memory, profile = asyncio.run(measure(farm, urls, db_url, rounds))
    figures = summarise(label, results, memory, len(urls))
    figures[f"{label}_sql_statements_per_warm_poll"] = round(profile.statements, 2)
    print(
        f"[{label}] a warm poll runs {profile.statements:.2f} SQL statements and "
        f"{profile.sql.get('(commit)', 0):.2f} commits (two more rounds, one of them writing "
        f'"last checked"); the event-loop thread does {profile.loop_share:.0%} of the CPU '
        "(the rest: other threads, e.g. aiosqlite)"
    )
    if show or figures[f"{label}_ratio_warm"] > RATIO_TARGET:
        print_profile(f"[{label}] two more warm pipeline rounds", profile)
    conn.send(figures)


def in_worker(case: Callable[[Connection], None]) -> dict[str, float]:
    """Run `case` in a forked process (the farm's pipe is shared, the parent waits)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=case, args=(sender,))
    worker.start()
    sender.close()
    try:
        figures: dict[str, float] = receiver.recv()
    except EOFError:
        raise RuntimeError(f"the benchmark worker died (exit code {worker.exitcode})") from None
    finally:
        worker.join()
    return figures


def build_layout(pages: int, servers: int) -> Layout:
    return farm_layout([varied_page(i) for i in range(pages)], servers)


def servers_for(pages: int) -> int:
    return min(pages, max(SERVERS, min(64, pages // 100)))


def page_counts(args: argparse.Namespace) -> list[int]:
    if args.scale:
        return list(SCALE_PAGES)
    if args.pages:
        return [int(n) for n in args.pages.split(",")]
    return [60 if args.quick else 300]


def measure_pages(
    pages: int, backends: dict[str, str], rounds: int, show: bool, prefix: str
) -> dict[str, float]:
    servers = servers_for(pages)
    figures: dict[str, float] = {f"{prefix}servers": servers}
    with Farm(functools.partial(build_layout, pages, servers)) as farm:
        urls = [farm.summary_url(i) for i in range(pages)]
        for label, db_url in backends.items():
            case = functools.partial(
                run_case,
                farm=farm,
                urls=urls,
                db_url=db_url,
                rounds=rounds,
                label=f"{prefix}{label}",
                show=show,
            )
            figures |= in_worker(case)
    return figures


def verdicts(figures: dict[str, float], cases: Sequence[str]) -> dict[str, bool]:
    """Per case: each target met?"""
    return {
        case: figures[f"{case}_ratio_warm"] <= RATIO_TARGET
        and figures[f"{case}_hit_rate_warm"] >= HIT_TARGET
        and figures[f"{case}_core_share_at_30s"] < CORE_TARGET
        and figures[f"{case}_poller_peak_rss_mb"] < RSS_TARGET_MB
        # Rounds that read some pages twice or not at all would not be the steady state.
        and figures[f"{case}_reads_per_page_warm_min"] >= 1 - READS_TOLERANCE
        and figures[f"{case}_reads_per_page_warm_max"] <= 1 + READS_TOLERANCE
        for case in cases
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="60 pages, 1 cold + 2 warm rounds")
    parser.add_argument("--pages", help="fake pages, e.g. 300 or 3000,10000 (default 300)")
    parser.add_argument("--scale", action="store_true", help=f"--pages {SCALE_PAGES}")
    parser.add_argument("--warm", type=int, help="warm rounds (default 8; quick 2)")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one database only")
    parser.add_argument("--profile", action="store_true", help="always print the profile")
    args = parser.parse_args()
    counts = page_counts(args)
    # 8: one round's ratio swings by ±30 % on a shared machine; 4 pairs left ±0.05 on the mean.
    rounds = 1 + (args.warm if args.warm is not None else 2 if args.quick else 8)

    figures: dict[str, float] = {"warm_rounds": rounds - 1, "interval_s": INTERVAL_S}
    cases: list[str] = []
    with databases() as backends:
        if args.only:
            backends = {args.only: backends[args.only]}
        for pages in counts:
            prefix = "" if len(counts) == 1 else f"p{pages}_"
            figures[f"{prefix}pages"] = pages
            figures |= measure_pages(pages, backends, rounds, args.profile, prefix)
            cases += [f"{prefix}{label}" for label in backends]
    passed = verdicts(figures, cases)
    print(
        "\nBare = plain aiohttp GETs of exactly the pipeline's URLs (all three endpoints are "
        "served, none 404s), same session settings, concurrency (32) and validators."
    )
    if "postgres" in backends:
        print("PostgreSQL runs in its own server process: its CPU is not counted; SQLite's is.")
    targets = {
        "ratio_warm_max": RATIO_TARGET,
        "hit_rate_warm_min": HIT_TARGET,
        "core_share_at_30s_max": CORE_TARGET,
        "poller_peak_rss_mb_max": RSS_TARGET_MB,
    }
    write_result(NAME, figures, targets, all(passed.values()))
    for case in cases:
        print(
            f"poll efficiency ({case}): warm CPU per poll {figures[f'{case}_ratio_warm']:.2f}x "
            f"bare GETs (target <= {RATIO_TARGET}), "
            f"{figures[f'{case}_core_share_at_30s']:.1%} of a core at {INTERVAL_S:g} s "
            f"(< {CORE_TARGET:.0%}), peak RSS {figures[f'{case}_poller_peak_rss_mb']:.0f} MB "
            f"(< {RSS_TARGET_MB:g}), {figures[f'{case}_hit_rate_warm']:.1%} conditional hits "
            f"(>= {HIT_TARGET:.0%}): {'PASS' if passed[case] else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
