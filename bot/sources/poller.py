"""Poll status sources, store what they say, and keep each service's state current."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.service_state import derive_state
from bot.core.status import Snapshot
from bot.core.timeutil import Clock
from bot.sources.catalog import Catalog, ServiceDef
from bot.sources.errors import SourceFormatError
from bot.sources.fetch import FetchOutcome, HttpFetcher
from bot.sources.statuspage import parse_statuspage_bytes
from bot.store import repository

log = logging.getLogger(__name__)

Parser = Callable[[bytes], Snapshot]
PARSERS: dict[str, Parser] = {"statuspage": parse_statuspage_bytes}


def loggable_url(url: str) -> str:
    """A URL without query or credentials, safe to log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


class StatusPoller:
    """Reads every polled source of the catalog; one bad source never stops the others."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        sessions: async_sessionmaker[AsyncSession],
        fetcher: HttpFetcher,
        clock: Clock,
        max_concurrency: int = 32,
    ) -> None:
        self._sessions = sessions
        self._fetcher = fetcher
        self._clock = clock
        self._limit = asyncio.Semaphore(max_concurrency)
        self._sources = catalog.source_urls()
        self._services_by_url: dict[str, list[ServiceDef]] = {}
        for service in catalog:
            for source in service.polled_sources:
                self._services_by_url.setdefault(source.url, []).append(service)

    @property
    def urls(self) -> Sequence[str]:
        """Every source URL this poller reads."""
        return list(self._services_by_url)

    async def poll_all(self) -> None:
        """Poll every source once, concurrently."""
        await asyncio.gather(*(self.poll(url) for url in self._services_by_url))

    async def poll(self, url: str) -> None:
        """Poll one source and store the outcome. Never raises except on cancellation."""
        try:
            async with self._limit:
                await self._poll(url)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug must not stop polling: the traceback goes to the log, the source stays as is.
            log.exception("polling %s failed unexpectedly", loggable_url(url))

    async def _poll(self, url: str) -> None:
        source_def = self._sources[url]
        async with self._sessions() as session:
            source = await repository.get_source(session=session, url=url)
            if source is None:
                raise LookupError(
                    f"no stored source for {loggable_url(url)}; was the catalog synced?"
                )
            result = await self._fetcher.get(
                url, etag=source.etag, last_modified=source.last_modified
            )
            now = self._clock()
            snapshot: Snapshot | None = None
            error = result.error
            if result.outcome is FetchOutcome.OK and result.body is not None:
                try:
                    snapshot = PARSERS[source_def.kind](result.body)
                except SourceFormatError as exc:
                    error = f"unreadable payload: {exc}"
            if result.outcome is FetchOutcome.NOT_MODIFIED:
                await repository.record_not_modified(session=session, source=source, now=now)
                snapshot = await repository.load_snapshot(session=session, url=url)
            elif snapshot is not None:
                await repository.record_snapshot(
                    session=session,
                    source=source,
                    snapshot=snapshot,
                    etag=result.etag,
                    last_modified=result.last_modified,
                    now=now,
                )
            else:
                first = source.consecutive_failures == 0
                await repository.record_failure(
                    session=session, source=source, error=error or "unknown error", now=now
                )
                if first:  # one line per outage of a source, not one per poll
                    log.warning("status source %s unreadable: %s", loggable_url(url), error)
            for service in self._services_by_url[url]:
                state = derive_state(snapshot, service.components)
                changed = await repository.set_service_state(
                    session=session, service_id=service.id, state=state, now=now
                )
                if changed:
                    log.info("%s is now %s", service.id, state.value)
