"""Fault injection for status sources: hours of simulated misbehaviour, and no false alert.

The real poller, fetcher and aiohttp session read fake status pages on 127.0.0.1 that rotate,
from a seeded random schedule, between a calm page and every fault we know of. Time is a
FakeClock moved 30 s per round; only the faults themselves (a hang, a trickle) cost wall time,
bounded by the 0.5 s fetch timeout. ``CHAOS_HOURS`` scales the simulated duration (default 3)
and ``CHAOS_SEED`` picks the schedule: ``CHAOS_HOURS=24 .venv/bin/pytest
tests/test_chaos_sources.py -q`` is the long run.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import os
import random
import ssl
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.events import DetectionEvent, EventKind
from bot.core.service_state import ServiceState
from bot.sources.catalog import ServiceDef, SourceDef
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.engine import session_factory
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import FakeStatusServer, Step
from tests.helpers import catalog_for, make_poller, retry_at

CALM = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_iterable_2017-08-22.json").read_text()
)
CALM_BYTES = json.dumps(CALM).encode()
# One page in real trouble: its incident is told once, on first sight, and never again after.
TROUBLED = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_github_2022-11-25_incident.json").read_text()
)
INTERVAL = 30.0
TIMEOUT = 0.5  # long enough for a calm read on a loaded 2-core machine
CAP = 1_000_000
MAX_BACKOFF = 900.0
PAGES = {
    "alpha": (CALM, ServiceState.OPERATIONAL),
    "bravo": (CALM, ServiceState.OPERATIONAL),
    "charlie": (CALM, ServiceState.OPERATIONAL),
    "delta": (CALM, ServiceState.OPERATIONAL),
    "echo": (TROUBLED, ServiceState.PARTIAL_OUTAGE),
}
SERVICES = tuple(PAGES)
HOURS = float(os.environ.get("CHAOS_HOURS", "3"))
SEED = int(os.environ.get("CHAOS_SEED", "11"))
TIMED_OUT = f"timed out after {TIMEOUT:g} s"
UNREADABLE = "unreadable payload: "


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a throwaway self-signed certificate for 127.0.0.1."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    command = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
    command += " -addext subjectAltName=IP:127.0.0.1"
    subprocess.run(
        [*command.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@dataclass(frozen=True)
class Fault:
    """One misbehaviour: the answer it scripts at `path`, and the reason it must leave."""

    name: str
    step: Callable[[Env, str], Step]
    reason: Callable[[str], bool]


@dataclass
class Env:
    plain: FakeStatusServer
    tls: FakeStatusServer
    garbage: random.Random


def _garbage(env: Env, path: str) -> Step:
    return Step(body=env.garbage.randbytes(env.garbage.randint(1, 4000)))


FAULTS: tuple[Fault, ...] = (
    Fault("http 500", lambda e, p: Step(status=500, body=b"oops"), lambda r: r == "HTTP 500"),
    Fault("http 503", lambda e, p: Step(status=503), lambda r: r == "HTTP 503"),
    Fault("hang", lambda e, p: Step(hang=True), lambda r: r == TIMED_OUT),
    Fault(
        "connection reset",
        lambda e, p: Step(reset=True),
        lambda r: r in {"connection reset", "server closed the connection"},
    ),
    Fault("slowloris", lambda e, p: Step(body=CALM_BYTES, trickle=0.02), lambda r: r == TIMED_OUT),
    Fault(
        "body stalls",
        lambda e, p: Step(body=CALM_BYTES, cut_at=200, after_cut="hang"),
        lambda r: r == TIMED_OUT,
    ),
    Fault(
        "body cut",
        lambda e, p: Step(body=CALM_BYTES, cut_at=200),
        lambda r: r == "response body truncated or undecodable",
    ),
    Fault("garbage", _garbage, lambda r: r.startswith(UNREADABLE)),
    Fault(
        "html",
        lambda e, p: Step.html("<html><body>Just a moment...</body></html>"),
        lambda r: r.startswith(UNREADABLE),
    ),
    Fault(
        "truncated json",
        lambda e, p: Step.truncated_json(CALM, keep=0.6),
        lambda r: r.startswith(UNREADABLE),
    ),
    Fault(
        "100 MB streamed",
        lambda e, p: Step(huge_bytes=100_000_000),
        lambda r: r == "body larger than 1 MB",
    ),
    Fault(
        "100 MB declared",
        lambda e, p: Step(huge_bytes=100_000_000, declare_length=True),
        lambda r: r == "body larger than 1 MB",
    ),
    Fault("redirect loop", lambda e, p: Step.redirect(p), lambda r: r == "more than 5 redirects"),
    Fault(
        "tls self-signed",
        lambda e, p: Step.redirect(e.tls.url(p)),
        lambda r: r == "TLS certificate rejected",
    ),
    Fault(
        "tls on a plain port",
        lambda e, p: Step.redirect(f"https://127.0.0.1:{e.plain.port}{p}"),
        lambda r: r == "TLS handshake failed",
    ),
)


@dataclass(frozen=True)
class Episode:
    start: datetime
    end: datetime
    fault: Fault | None  # None: the calm page


def schedules(
    rng: random.Random, count: int, start: datetime, end: datetime
) -> list[list[Episode]]:
    """Per source, calm and faulty stretches alternating, dealt round-robin from one shuffled bag.

    Every fault comes round before one repeats; with 5 sources the first 15 faults (one bag)
    all start within 3 simulated hours, so the default run meets each of them.
    """
    episodes: list[list[Episode]] = [[] for _ in range(count)]
    at = [start] * count
    bag: list[Fault] = []
    while min(at) < end:
        for index in range(count):
            # Calm for longer than the longest backoff (18 min): the next fault meets a fresh read.
            calm_until = at[index] + timedelta(minutes=rng.uniform(19, 30))
            episodes[index].append(Episode(at[index], calm_until, None))
            if not bag:
                bag.extend(FAULTS)
                rng.shuffle(bag)
            # Short faults test the hysteresis (1-2 failures change nothing); long ones backoff.
            minutes = rng.choice((rng.uniform(0.5, 1.5), rng.uniform(2, 30)))
            at[index] = calm_until + timedelta(minutes=minutes)
            episodes[index].append(Episode(calm_until, at[index], bag.pop()))
    return episodes


@dataclass
class Track:
    """What one source went through, and what the poller must show for it."""

    path: str
    episodes: list[Episode]
    failures: int = 0  # consecutive failed reads
    last_reason_ok: Callable[[str], bool] | None = None
    results: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    current: Episode | None = None
    met: set[int] = field(default_factory=set)  # fault episodes that failed a read

    def episode(self, now: datetime) -> Episode:
        return next(e for e in self.episodes if e.start <= now < e.end)


@dataclass
class Chaos:
    env: Env
    poller: StatusPoller
    engine: AsyncEngine
    clock: FakeClock
    events: list[DetectionEvent]


@pytest.fixture
async def chaos(
    engine: AsyncEngine, clock: FakeClock, self_signed: ssl.SSLContext
) -> AsyncIterator[Chaos]:
    async with (
        FakeStatusServer() as plain,
        FakeStatusServer(ssl_context=self_signed) as tls,
        new_http_session(user_agent="outagebot-chaos") as http,
    ):
        catalog = catalog_for({s: plain.url(f"/{s}/api/v2/summary.json") for s in SERVICES})
        sessions = session_factory(engine)
        async with sessions() as session:
            await catalog_store.sync_catalog(session=session, catalog=catalog)
        events: list[DetectionEvent] = []

        async def record(session: object, batch: Sequence[DetectionEvent], now: object) -> None:
            events.extend(batch)  # what would become alert deliveries

        poller = StatusPoller(
            catalog=catalog,
            sessions=sessions,
            fetcher=HttpFetcher(http, timeout=TIMEOUT, max_body_bytes=CAP),
            prober=HttpProber(http),
            clock=clock,
            record_events=record,
            interval_seconds=INTERVAL,
            max_backoff_seconds=MAX_BACKOFF,
            rng=random.Random(SEED),
        )
        env = Env(plain, tls, random.Random(SEED))
        yield Chaos(env, poller, engine, clock, events)


_polling: contextvars.ContextVar[str] = contextvars.ContextVar("polling")


async def test_hours_of_mixed_faults_raise_no_false_alert(
    chaos: Chaos, caplog: pytest.LogCaptureFixture
) -> None:
    """The guarantee of docs/reliability.md for status sources, as one long mixed run."""
    rng = random.Random(SEED)
    start = chaos.clock.now
    end = start + timedelta(hours=HOURS)
    plans = schedules(rng, len(SERVICES), start, end + timedelta(hours=1))
    tracks = {
        chaos.env.plain.url(f"/{s}/api/v2/summary.json"): Track(f"/{s}/api/v2/summary.json", plan)
        for s, plan in zip(SERVICES, plans, strict=True)
    }
    service_of = {url: url.split("/")[3] for url in tracks}
    results: dict[str, str] = {}

    def observe(kind: str, result: str, seconds: float) -> None:
        results[_polling.get()] = result

    chaos.poller.on_poll = observe

    async def poll(url: str) -> None:
        _polling.set(url)  # each gathered poll runs in its own task, so its own context
        await chaos.poller.poll(url)

    footprints: list[dict[str, int]] = []
    rounds = 0
    while chaos.clock.now < end:
        now = chaos.clock.now
        for track in tracks.values():
            episode = track.episode(now)
            if episode is not track.current:
                track.current = episode
                step = (
                    Step.json(PAGES[track.path.split("/")[1]][0])
                    if episode.fault is None
                    else episode.fault.step(chaos.env, track.path)
                )
                chaos.env.plain.set_script(track.path, [step])
        before = {url: chaos.env.plain.count(t.path) for url, t in tracks.items()}
        results.clear()
        await asyncio.gather(*(poll(url) for url in tracks))

        async with session_factory(chaos.engine)() as session:
            states = await service_state_store.service_states(session=session)
            sources = {
                url: await source_store.get_source(session=session, url=url) for url in tracks
            }
        for url, track in tracks.items():
            result, episode = results[url], track.current
            assert episode is not None
            track.results[result] += 1
            next_ask = retry_at(chaos.poller, url)
            asked = chaos.env.plain.count(track.path) > before[url]
            if result == "skipped":
                # Backing off: no request at all, and only until the backoff's end.
                assert not asked
                assert next_ask is not None
                assert now < next_ask
            elif result == "failed":
                assert asked
                assert episode.fault is not None, f"{url} failed on a calm page"
                track.failures += 1
                track.faults[episode.fault.name] += 1
                track.met.add(id(episode))
                track.last_reason_ok = episode.fault.reason
                nominal = min(MAX_BACKOFF, INTERVAL * 2 ** (track.failures - 1))
                assert next_ask is not None
                assert nominal * 0.8 <= (next_ask - now).total_seconds() <= nominal * 1.2
            else:
                assert result in {"ok", "unchanged"}, f"{url}: poll ended in {result!r}"
                assert episode.fault is None, f"{episode.fault} read as a good page"
                assert next_ask is None
                track.failures = 0
            state = states[service_of[url]].state
            source = sources[url]
            assert source is not None
            if track.failures >= 3:
                # Unreadable past the hysteresis: unknown, never down, and it says why.
                assert state is ServiceState.UNKNOWN
                assert track.last_reason_ok is not None
                assert source.last_error is not None
                assert track.last_reason_ok(source.last_error), source.last_error
            else:
                # Readable, or not yet past the hysteresis: the page's real state.
                real = PAGES[service_of[url]][1]
                assert state is real, (url, track.failures, source.last_error)
            if episode.fault is None and now - episode.start > timedelta(
                seconds=MAX_BACKOFF * 1.2 + INTERVAL
            ):
                # Polling went on through the fault: the page is read again within the backoff cap.
                assert track.failures == 0
        rounds += 1
        if rounds == 1:
            first_look = list(chaos.events)
            assert {e.service_id for e in first_look} == {"echo"}
        if rounds % 60 == 0:
            footprints.append(chaos.poller.footprint())
        chaos.clock.advance(seconds=INTERVAL)

    # No false alert: after the troubled page's first look, only operators' stale/recovered notes.
    operators = {EventKind.SOURCE_STALE, EventKind.SOURCE_RECOVERED}
    alerting = [e for e in chaos.events[len(first_look) :] if e.kind not in operators]
    assert alerting == []
    assert first_look
    assert not any(e.kind in operators for e in first_look)
    async with session_factory(chaos.engine)() as session:
        stored = await detection_store.events_for(session=session, limit=100_000)
    assert [e.key for e in stored if e.kind not in operators] == [e.key for e in first_look]
    # Every fault was an expected failure: no traceback, no error line, from us or from aiohttp.
    assert [
        r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info
    ] == []
    outages = [r for r in caplog.records if r.name == "bot.sources.poller"]
    assert all("\n" not in r.getMessage() for r in outages)
    # Bounded memory: per-source state never outgrows the sources, however long the run.
    footprints.append(chaos.poller.footprint())
    for footprint in footprints:
        assert max(footprint.values()) <= 2 * len(tracks), footprint
    # The 100 MB bodies were refused near the cap, never read whole.
    for track in tracks.values():
        sent = chaos.env.plain.bytes_sent.get(track.path, 0)
        huge = track.faults["100 MB streamed"] + track.faults["100 MB declared"]
        cut = track.faults["body cut"] + track.faults["body stalls"]  # 200 bytes each
        assert sent <= huge * (CAP + 2_000_000) + cut * 200
    # Polling never skipped a whole fault: each one that began in the run failed a read.
    for track in tracks.values():
        for episode in track.episodes:
            if episode.fault is not None and episode.start < end - timedelta(seconds=INTERVAL):
                assert id(episode) in track.met, (track.path, episode)
    injected = sum((t.faults for t in tracks.values()), Counter[str]())
    if HOURS >= 3:
        assert set(injected) == {f.name for f in FAULTS}, set(injected) ^ {f.name for f in FAULTS}
    print(
        f"\nchaos: {HOURS:g} simulated h, {rounds} rounds x {len(tracks)} sources, "
        f"{sum(injected.values())} faults injected {dict(injected)}, "
        f"results {dict(sum((t.results for t in tracks.values()), Counter[str]()))}, "
        f"false alerts {len(alerting)}, stale/recovered events {len(stored) - len(first_look)}"
    )


async def test_https_page_with_a_self_signed_certificate_is_unknown_with_the_reason(
    engine: AsyncEngine, clock: FakeClock, self_signed: ssl.SSLContext
) -> None:
    async with (
        FakeStatusServer(ssl_context=self_signed) as tls,
        new_http_session(user_agent="outagebot-chaos") as http,
    ):
        url = tls.url("/api/v2/summary.json")
        tls.set_json("/api/v2/summary.json", CALM)
        catalog = catalog_for({"secure": url})
        poller = await make_poller(engine, clock, catalog, http, timeout=TIMEOUT)
        sessions = session_factory(engine)
        for _ in range(3):
            await poller.poll_all()
            clock.advance(minutes=20)  # past any backoff
        async with sessions() as session:
            state = (await service_state_store.service_states(session=session))["secure"].state
            source = await source_store.get_source(session=session, url=url)
    assert state is ServiceState.UNKNOWN
    assert source is not None
    assert source.last_error == "TLS certificate rejected"
    assert source.consecutive_failures == 3
    assert tls.requests == []  # refused during the handshake: nothing was sent to it


async def test_sources_added_and_removed_leave_no_state_behind(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    """Custom services come and go for the bot's lifetime; what the poller keeps must not grow."""
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-chaos") as http:
        server.set_json("/base/api/v2/summary.json", CALM)
        catalog = catalog_for({"base": server.url("/base/api/v2/summary.json")})
        poller = await make_poller(engine, clock, catalog, http, timeout=TIMEOUT)
        sessions = session_factory(engine)
        await poller.poll_all()
        baseline = poller.footprint()
        for index in range(20):
            path = f"/custom-{index}/api/v2/summary.json"
            # A good read fills the caches, a failing one starts a backoff.
            server.set_script(path, [Step.json(CALM), Step(status=503)])
            service = ServiceDef(
                id=f"custom-{index}",
                name=f"Custom {index}",
                provider="custom",
                sources=(SourceDef("statuspage", server.url(path)),),
            )
            catalog.add(service)
            async with sessions() as session:
                await catalog_store.sync_catalog(session=session, catalog=catalog)
            assert poller.track(service) == [server.url(path)]
            await poller.poll(server.url(path))
            await poller.poll(server.url(path))
            assert retry_at(poller, server.url(path)) is not None
            assert poller.untrack(service.id) == [server.url(path)]
            catalog.remove(service.id)
            assert retry_at(poller, server.url(path)) is None
            assert poller.footprint() == baseline

        # Added again, a source starts afresh: no leftover backoff, a whole (unconditional) read.
        path = "/custom-0/api/v2/summary.json"
        server.set_json(path, CALM)
        service = ServiceDef(
            id="custom-0", name="Custom 0", provider="custom",
            sources=(SourceDef("statuspage", server.url(path)),),
        )  # fmt: skip
        catalog.add(service)
        poller.track(service)
        await poller.poll(server.url(path))
        last = [r for r in server.requests if r.path == path][-1]
        assert last.headers.get("If-None-Match") is None
        async with sessions() as session:
            state = (await service_state_store.service_states(session=session))["custom-0"].state
        assert state is ServiceState.OPERATIONAL


async def test_a_caller_that_polled_is_not_waited_for_or_cancelled_by_drain(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    """drain() is for polls in flight: the task that awaited a poll earlier is not one of them."""
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-chaos") as http:
        url = server.url("/api/v2/summary.json")
        server.set_json("/api/v2/summary.json", CALM)
        catalog = catalog_for({"example": url})
        poller = await make_poller(engine, clock, catalog, http, timeout=TIMEOUT)
        for _ in range(50):  # a long-lived caller, e.g. a loop or a command handler
            await poller.poll(url)
            clock.advance(seconds=INTERVAL)
        assert poller.footprint()["in_flight"] == 0
        await poller.drain(grace_seconds=0.01)  # returns at once; used to cancel this very task

        server.set_script("/api/v2/summary.json", [Step(hang=True)])
        hanging = asyncio.create_task(poller.poll(url))
        await server.wait_for("/api/v2/summary.json", 51)
        assert poller.footprint()["in_flight"] == 1
        await poller.drain(grace_seconds=5)  # the fetch timeout (0.5 s) ends it well before
        assert hanging.done()
        assert not hanging.cancelled()
        assert poller.footprint()["in_flight"] == 0
