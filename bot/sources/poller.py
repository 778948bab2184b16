"""Poll status sources and feed what they say through detection, one transaction per read."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.backoff import backoff_delay
from bot.core.detection import (
    DetectionConfig,
    ServiceMemory,
    observe_probe,
    observe_snapshot,
    observe_source_failure,
)
from bot.core.events import DetectionEvent
from bot.core.network_guard import NetworkGuard
from bot.core.service_state import ServiceState, worst
from bot.core.service_view import service_view
from bot.core.status import Snapshot, SourceKind
from bot.core.timeutil import Clock
from bot.sources.catalog import Catalog, ServiceDef, SourceDef
from bot.sources.catalog_drift import StaleNamesLog, service_state
from bot.sources.checked_writes import CheckedTouch, CheckedWriter
from bot.sources.fetch import HttpFetcher
from bot.sources.poll_quiet import QuietReads
from bot.sources.probe import HttpProber, ProbeSpec, ProbeVerdict
from bot.sources.reader import SourceReader
from bot.sources.statuspage_webhook import on_known_page
from bot.store import detection_store, service_state_store, source_store
from bot.store.availability import DatabaseOutageLog
from bot.store.models import SourceRow

log = logging.getLogger(__name__)

EventSink = Callable[[Sequence[DetectionEvent]], None]
EventRecorder = Callable[[AsyncSession, Sequence[DetectionEvent], datetime], Awaitable[object]]
PollObserver = Callable[[str, str, float], None]
"""(source kind, result: ok/unchanged/failed/skipped/error, seconds): for metrics."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHECKED_AT_EVERY = timedelta(seconds=60)
_CHECKED_AT_GRID = 10
"""Seconds: an unchanged read's "last checked" is the start of the 10 s in which it happened.
Pages are read at slots spread over the interval, each at its own moment; written exactly, each
would be an UPDATE of its own. On a grid, the reads a batch gathers share one or two times, so
one UPDATE of the services each, and the time shown is never later than the read."""


def _on_checked_grid(moment: datetime) -> datetime:
    return moment.replace(microsecond=0) - timedelta(seconds=moment.second % _CHECKED_AT_GRID)


def loggable_url(url: str) -> str:
    """A URL without query or credentials, safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class StatusPoller:
    """Reads every source of the catalog; one bad source never stops the others."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        sessions: async_sessionmaker[AsyncSession],
        fetcher: HttpFetcher,
        prober: HttpProber,
        clock: Clock,
        config: DetectionConfig | None = None,
        guard: NetworkGuard | None = None,
        on_events: EventSink | None = None,
        on_poll: PollObserver | None = None,
        record_events: EventRecorder | None = None,
        max_concurrency: int = 32,
        interval_seconds: float = 30.0,
        max_backoff_seconds: float = 900.0,
        rng: random.Random | None = None,
        checked_gather_seconds: float = 0.0,
    ) -> None:
        """``checked_gather_seconds``: how long unchanged reads gather before their "last
        checked" times are written together (see `CheckedWriter`); the app, whose polls are
        spread over the interval, gathers 5 s."""
        self._sessions = sessions
        self._reader = SourceReader(fetcher)
        self._prober = prober
        self._clock = clock
        self._config = config or DetectionConfig()
        self._guard = guard or NetworkGuard()
        self.on_events = on_events
        self.on_poll = on_poll
        self._record_events = record_events
        self._limit = asyncio.Semaphore(max_concurrency)
        self._sources = catalog.source_urls()
        self._in_flight: set[asyncio.Task[object]] = set()
        self._stopped: set[asyncio.Task[object]] = set()  # cancelled by drain(), on purpose
        self._interval, self._max_backoff = interval_seconds, max_backoff_seconds
        self._random = rng or random.Random()  # noqa: S311  (jitter, not cryptography)
        self._database = DatabaseOutageLog(log, "polling", clock=clock)
        self._not_before: dict[str, datetime] = {}
        # Detection memory per (service, url), and when each page's "last checked" was written.
        self._memories: dict[tuple[str, str], ServiceMemory] = {}
        self._quiet_reads = QuietReads(self._config)
        self._flushed: dict[str, datetime] = {}
        self._checked = CheckedWriter(
            sessions,
            on_written=lambda _touches: self._database.answered(),
            on_failed=self._checked_failed,
            polls_in_flight=lambda: len(self._in_flight),
            min_gather_seconds=checked_gather_seconds,
        )
        # The latest state each (service, official source) gives; a service shows the worst.
        self._source_states: dict[tuple[str, str], ServiceState] = {}
        self._stale_names = StaleNamesLog(log)
        self._services_by_url: dict[str, list[ServiceDef]] = {}
        for service in catalog:
            for source in service.sources:
                self._services_by_url.setdefault(source.url, []).append(service)

    def track(self, service: ServiceDef) -> list[str]:
        """Start polling a service added at run time; returns the URLs that are new."""
        new = []
        for source in service.sources:
            if source.url not in self._services_by_url:
                new.append(source.url)
                self._sources[source.url] = source
            self._services_by_url.setdefault(source.url, []).append(service)
        return new

    def untrack(self, service_id: str) -> list[str]:
        """Stop polling a service; returns the URLs no other service needs."""
        dropped = []
        for url, services in list(self._services_by_url.items()):
            services[:] = [s for s in services if s.id != service_id]
            if not services:
                del self._services_by_url[url]
                self._sources.pop(url, None)
                dropped.append(url)
        self._source_states = {k: v for k, v in self._source_states.items() if k[0] != service_id}
        self._memories = {k: v for k, v in self._memories.items() if k[0] != service_id}
        self._quiet_reads.forget(service_id)
        self._stale_names.forget(service_id)
        # Custom services come and go for the bot's lifetime: per-URL state must go with them,
        # or it grows without bound and a URL added again inherits an old backoff.
        for url in dropped:
            self._not_before.pop(url, None)
            self._flushed.pop(url, None)
            self._reader.forget(url)
        return dropped

    @property
    def urls(self) -> Sequence[str]:
        """Every source URL this poller reads."""
        return list(self._services_by_url)

    def footprint(self) -> dict[str, int]:
        """Entries held per kind of per-source state: bounded by the sources, not by polls."""
        return {
            "memories": len(self._memories),
            "quiet_verdicts": len(self._quiet_reads),
            "source_states": len(self._source_states),
            "backoffs": len(self._not_before),
            "flushed": len(self._flushed),
            "in_flight": len(self._in_flight),
            **self._reader.footprint(),
        }

    async def poll_all(self) -> None:
        """Poll every source once, concurrently; returns once all they read is stored."""
        await asyncio.gather(*(self.poll(url) for url in self._services_by_url))
        await self._checked.flush()

    async def drain(self, grace_seconds: float) -> None:
        """Let polls in flight finish, then (at once) the "last checked" writes they handed
        over, within `grace_seconds` (stragglers cancelled): shutdown never cuts a write."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + grace_seconds
        if polls := {task for task in self._in_flight if not task.done()}:
            _, late = await asyncio.wait(polls, timeout=grace_seconds)
            self._stopped |= late  # cancelled on purpose: poll() ends them quietly
            await _cancel(late)
        # After the polls, whose last may have added a time.
        await self._checked.finish(grace_seconds=max(0.0, ends - loop.time()))

    async def poll(self, url: str) -> None:
        """Poll one source and store the outcome. Never raises except on cancellation."""
        # One coroutine, not a wrapper around another: every resumption of a read passes
        # through each frame above it, and thousands of pages are read every 30 s.
        task = asyncio.current_task()
        if task is not None:
            # Tracked only while this poll runs: a long-lived caller (a command handler, a
            # loop) must neither pile up done-callbacks nor be waited for by drain() after it.
            self._in_flight.add(task)
        source = self._sources.get(url)
        result, started = "error", time.perf_counter()
        try:
            # Backing off after failures: spare a struggling page our requests.
            not_before = self._not_before.get(url)
            if not_before is not None and self._clock() < not_before:
                result = "skipped"
            else:
                async with self._limit:
                    source = self._sources[url]
                    if source.kind == SourceKind.PROBE:
                        outcome, checked_at = await self._probe(source), None
                    else:
                        outcome, checked_at = await self._read(source)
                if checked_at is not None:
                    self._touch(url, checked_at)
                result = outcome
        except asyncio.CancelledError:
            if task is None or task not in self._stopped:
                raise
            # drain() stopped this straggler at shutdown: the plan, not a failure, so the
            # scheduled job ends quietly instead of logging an error with a traceback.
            task.uncancel()
            log.info("shutdown: stopped the poll of %s that was still running", loggable_url(url))
            return
        except Exception as exc:
            # Neither a bug nor the database going away stops polling: a bug's traceback goes
            # to the log, an outage one line for all sources; the source stays.
            self._database.failed(exc, "polling %s failed unexpectedly", loggable_url(url))
        finally:
            if task is not None:
                self._in_flight.discard(task)
                self._stopped.discard(task)
            self._checked.poll_ended()
        if self.on_poll is not None:
            self.on_poll(source.kind if source else "?", result, time.perf_counter() - started)

    async def ingest_push(self, url: str, fragment: Snapshot) -> list[DetectionEvent]:
        """Feed a pushed fragment (a webhook) through storage and detection at once."""
        async with self._sessions() as session:
            source = await self._source_row(session, url)
            now = self._clock()
            await source_store.record_push(
                session=session, source=source, snapshot=fragment, now=now
            )
            # Attributed by the page's whole component list, exactly as a poll's snapshot is.
            stored = await source_store.load_snapshot(session=session, url=url)
            fragment = on_known_page(fragment, stored)
            events = await self._detect(session, source, fragment, now, "", full=False)
            await self._record(session, events, now)
            await session.commit()
        self._publish(events)
        return events

    async def _read(self, source_def: SourceDef) -> tuple[str, datetime | None]:
        """The result, and when "last checked" is still to be written (None: nothing to)."""
        url = source_def.url
        # Fetch before opening a session: no database connection waits on a slow page.
        result = await self._reader.read(kind=source_def.kind, url=url, options=source_def.options)
        if result.unchanged and result.snapshot is not None:
            now = self._clock()
            services = self._services_by_url[url]
            quiet = self._quiet_reads.judge(url, services, result.snapshot, self._memories, now)
            if quiet is not None:
                # Only "last checked" moved: written at most once a minute, in an UPDATE
                # shared with other pages, instead of a transaction per poll.
                self._memories.update(quiet)
                due = now - self._flushed.get(url, _EPOCH) >= _CHECKED_AT_EVERY
                return "unchanged", _on_checked_grid(now) if due else None
        async with self._sessions() as session:
            source = await self._source_row(session, url)
            now = self._clock()
            if result.snapshot is None:
                if source.consecutive_failures == 0:  # one line per outage of a source
                    log.warning("status source %s unreadable: %s", loggable_url(url), result.error)
                await source_store.record_failure(
                    session=session, source=source, error=result.error or "unknown error", now=now
                )
                self._back_off(url, source.consecutive_failures, now)
            else:
                self._not_before.pop(url, None)
                if result.unchanged:
                    await source_store.record_not_modified(session=session, source=source, now=now)
                else:
                    await source_store.record_snapshot(
                        session=session,
                        source=source,
                        snapshot=result.snapshot,
                        etag=result.etag,
                        last_modified=result.last_modified,
                        now=now,
                    )
            events = await self._detect(
                session, source, result.snapshot, now, result.error or "", full=True
            )
            await self._record(session, events, now)
            await session.commit()
        self._database.answered()
        self._flushed[url] = now
        self._publish(events)
        if result.snapshot is None:
            return "failed", None
        return ("unchanged" if result.unchanged else "ok"), None

    async def _source_row(self, session: AsyncSession, url: str) -> SourceRow:
        source = await source_store.get_source(session=session, url=url)
        if source is None:
            raise LookupError(f"no stored source for {loggable_url(url)}; catalog not synced?")
        return source

    def _back_off(self, url: str, failures: int, now: datetime) -> None:
        delay = backoff_delay(
            failures,
            base=self._interval,
            cap=self._max_backoff,
            jitter=self._random.random(),
        )
        self._not_before[url] = now + timedelta(seconds=delay)

    async def _detect(
        self,
        session: AsyncSession,
        source: SourceRow,
        snapshot: Snapshot | None,
        now: datetime,
        error: str,
        *,
        full: bool,
    ) -> list[DetectionEvent]:
        all_events: list[DetectionEvent] = []
        for service in self._services_by_url[source.url]:
            key = (service.id, source.url)
            before = await self._memory(session, service.id, source.url)
            if snapshot is not None:
                view = service_view(snapshot, service.components, (service.name,))
                memory, events = observe_snapshot(
                    before, view, service_id=service.id, now=now, config=self._config
                )
                if source.id is not None and view.incidents:
                    await detection_store.link_incidents(
                        session=session,
                        service_id=service.id,
                        source_id=source.id,
                        external_ids=[i.id for i in view.incidents],
                    )
                if full:  # a pushed fragment says too little to judge the whole service
                    self._source_states[key] = service_state(snapshot, service.components)
                    self._stale_names.observe(service, loggable_url(source.url), snapshot)
            else:
                memory, events = observe_source_failure(
                    before, service_id=service.id, now=now, config=self._config, error=error
                )
                if memory.source_stale:
                    self._source_states[key] = ServiceState.UNKNOWN
            await detection_store.save_memory(
                session=session,
                service_id=service.id,
                source_url=source.url,
                memory=memory,
                now=now,
            )
            self._memories[key] = memory
            all_events += await _stage_events(session, events)
            state = self._official_state(service)
            if state is not None:
                await _set_state(session, service.id, state, now)
        return all_events

    async def _memory(self, session: AsyncSession, service_id: str, url: str) -> ServiceMemory:
        cached = self._memories.get((service_id, url))
        if cached is not None:
            return cached
        return await detection_store.load_memory(
            session=session, service_id=service_id, source_url=url
        )

    def _touch(self, url: str, now: datetime) -> None:
        """Have "last checked" written, in a batch this poll does not wait for."""
        self._checked.add(url, [s.id for s in self._services_by_url[url]], now)
        self._flushed[url] = now  # not due again for a minute, unless this write fails

    def _checked_failed(self, touches: Sequence[CheckedTouch], exc: Exception) -> None:
        for url, _services, _at in touches:
            self._flushed.pop(url, None)  # due again: written at the page's next read
        self._database.failed(exc, 'writing "last checked" of %d pages failed', len(touches))

    def _official_state(self, service: ServiceDef) -> ServiceState | None:
        """The worst state its readable official sources give; unknown only if none is readable."""
        known = [
            self._source_states[key]
            for source in service.official_sources
            if (key := (service.id, source.url)) in self._source_states
        ]
        if not known:
            return None
        readable = [state for state in known if state is not ServiceState.UNKNOWN]
        return worst(readable) if readable else ServiceState.UNKNOWN

    async def _probe(self, source_def: SourceDef) -> str:
        spec = ProbeSpec.from_options(source_def.url, source_def.options)
        result = await self._prober.probe(spec)
        now = self._clock()
        ok = result.verdict is not ProbeVerdict.FAILED
        self._guard.record(urlsplit(spec.url).hostname or spec.url, ok=ok, at=now)
        suspect = self._guard.suspect(now)
        detail = {"verdict": result.verdict.value, "latency_ms": f"{result.latency_ms:.0f}"}
        if result.http_status is not None:
            detail["http_status"] = str(result.http_status)
        if result.error:
            detail["error"] = result.error
        events: list[DetectionEvent] = []
        async with self._sessions() as session:
            for service in self._services_by_url[source_def.url]:
                memory = await detection_store.load_memory(
                    session=session, service_id=service.id, source_url=source_def.url
                )
                memory, new = observe_probe(
                    memory,
                    ok=ok,
                    service_id=service.id,
                    now=now,
                    config=self._config,
                    network_suspect=suspect,
                    detail=detail,
                )
                await detection_store.save_memory(
                    session=session,
                    service_id=service.id,
                    source_url=source_def.url,
                    memory=memory,
                    now=now,
                )
                events += await _stage_events(session, new)
                if not service.official_sources:
                    state = _probe_only_state(
                        result.verdict, down=memory.probe_down, suspect=suspect
                    )
                    if state is not None:
                        await _set_state(session, service.id, state, now)
            await self._record(session, events, now)
            await session.commit()
        self._database.answered()
        self._publish(events)
        return "ok" if ok else "failed"

    async def _record(
        self, session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
    ) -> None:
        # In the same transaction as the events: no event without its deliveries, nor the reverse.
        if events and self._record_events is not None:
            await self._record_events(session, events, now)

    def _publish(self, events: Sequence[DetectionEvent]) -> None:
        for event in events:
            log.info("%s: %s %s", event.service_id, event.kind.value, event.title or "")
        if events and self.on_events is not None:
            self.on_events(events)


async def _cancel(tasks: set[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=5)


def _probe_only_state(verdict: ProbeVerdict, *, down: bool, suspect: bool) -> ServiceState | None:
    """The state of a service only our probe watches; None keeps the current one."""
    if down:
        return ServiceState.PARTIAL_OUTAGE
    if verdict is ProbeVerdict.OK:
        return ServiceState.OPERATIONAL
    if verdict is ProbeVerdict.SLOW:
        return ServiceState.DEGRADED
    # A failure not yet confirmed proves nothing; with our own network down, we cannot know.
    return ServiceState.UNKNOWN if suspect else None


async def _stage_events(
    session: AsyncSession, events: Sequence[DetectionEvent]
) -> list[DetectionEvent]:
    added = await detection_store.add_events(session=session, events=events)
    keys = {(row.service_id, row.key) for row in added}
    return [e for e in events if (e.service_id, e.key[:400]) in keys]


async def _set_state(
    session: AsyncSession, service_id: str, state: ServiceState, now: datetime
) -> None:
    if await service_state_store.set_service_state(
        session=session, service_id=service_id, state=state, now=now
    ):
        log.info("%s is now %s", service_id, state.value)
