"""Services admins add by URL (`/service add`): discovered, stored, polled like built-in ones."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import UserFacingError
from bot.core.observers import Observers
from bot.core.rich import Quoted
from bot.core.timeutil import Clock
from bot.sources.catalog import Catalog, CatalogError, ServiceDef, SourceDef
from bot.sources.discovery import DiscoveryFailed, discover_source
from bot.sources.fetch import HttpFetcher
from bot.sources.poller import StatusPoller
from bot.sources.statuspage_merge import part_urls
from bot.store import catalog_store
from bot.store.availability import DatabaseOutageLog
from bot.store.models import CustomServiceRow

log = logging.getLogger(__name__)

MAX_CUSTOM_SERVICES = 200
CUSTOM_PREFIX = "custom-"
"""Every custom service id starts so; built-in ids never do."""


@dataclass(frozen=True, slots=True)
class Requester:
    """Which community asks (custom services remember it; only it may remove the service)."""

    platform: str
    community_id: str


def custom_service_def(row: CustomServiceRow) -> ServiceDef:
    """The catalog entry of a stored custom service."""
    return ServiceDef(
        id=row.id,
        name=row.name,
        provider=row.name,
        status_page=row.status_page,
        sources=(SourceDef(kind=row.kind, url=row.url),),
    )


def builtin_source_urls(catalog: Catalog) -> frozenset[str]:
    """The built-in services' source URLs, with their Statuspage extra endpoints: the only URLs
    the fetcher may read without the address policy. Whatever an admin typed is not among them
    (unless it is one of these very URLs)."""
    urls: set[str] = set()
    for service in catalog:
        if not service.id.startswith(CUSTOM_PREFIX):
            for source in service.sources:
                urls.update((source.url, *part_urls(source.url)))
    return frozenset(urls)


async def load_custom_services(*, session: AsyncSession) -> list[ServiceDef]:
    """Every stored custom service."""
    rows = (await session.exec(select(CustomServiceRow))).all()
    return [custom_service_def(row) for row in rows]


class CustomServices:
    """Adds and removes custom services across catalog, database, poller and scheduler."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        sessions: async_sessionmaker[AsyncSession],
        fetcher: HttpFetcher,
        poller: StatusPoller,
        clock: Clock,
    ) -> None:
        """`fetcher` must guard the URLs admins type (a `GuardedRoute`, see bot.app): discovery
        and every poll of a custom service go through it."""
        self._catalog = catalog
        self._sessions = sessions
        self._fetcher = fetcher
        self._poller = poller
        self._clock = clock
        self.on_new_urls: Observers[list[str]] = Observers()
        """Told the URLs to start polling (the scheduler subscribes)."""
        self.on_dropped_urls: Observers[list[str]] = Observers()
        """Told the URLs no service needs any more."""

    async def add(self, *, name: str, url: str, requester: Requester) -> ServiceDef:
        """Discover, store and start polling a service; UserFacingError explains any refusal."""
        service_id = CUSTOM_PREFIX + _slug(name)
        if len(service_id) <= len(CUSTOM_PREFIX) or len(name) > 60:
            raise UserFacingError("Give the service a name of 1 to 60 letters or digits.")
        if self._catalog.name_taken(name) or self._catalog.get(service_id):
            raise UserFacingError("A service called “", Quoted(name), "” exists already.")
        async with self._sessions() as session:
            count = len((await session.exec(select(CustomServiceRow.id))).all())
        if count >= MAX_CUSTOM_SERVICES:
            raise UserFacingError(f"This bot already follows {count} custom services, its limit.")
        try:
            source = await discover_source(self._fetcher, url)
        except DiscoveryFailed as exc:
            raise UserFacingError(str(exc)) from None
        row = CustomServiceRow(
            id=service_id,
            name=name.strip(),
            kind=source.kind,
            url=source.url,
            status_page=url.strip(),
            added_by_platform=requester.platform,
            added_by_community=requester.community_id,
            added_at=self._clock(),
        )
        service = custom_service_def(row)
        try:
            self._catalog.add(service)
        except CatalogError:
            raise UserFacingError("A service with that name exists already.") from None
        async with self._sessions() as session:
            session.add(row)
            await session.commit()
            await catalog_store.sync_catalog(session=session, catalog=self._catalog)
        new_urls = self._poller.track(service)
        self.on_new_urls(new_urls)
        for new_url in new_urls:
            await self._poller.poll(new_url)  # so /status answers right away
        log.info("custom service %s added (%s %s)", service_id, source.kind, source.url)
        return service

    async def remove(self, *, service_id: str, requester: Requester) -> ServiceDef:
        """Stop following a custom service; only the community that added it may."""
        async with self._sessions() as session:
            row = await session.get(CustomServiceRow, service_id)
            if row is None:
                raise UserFacingError("Only services added with /service add can be removed.")
            if (row.added_by_platform, row.added_by_community) != (
                requester.platform,
                requester.community_id,
            ):
                raise UserFacingError("Only the community that added this service can remove it.")
            await session.delete(row)
            await session.commit()
        service = self._catalog.remove(service_id)
        self.on_dropped_urls(self._poller.untrack(service_id))
        if service is None:
            raise UserFacingError("That service is already gone.")
        return service

    async def refresh(self) -> tuple[list[str], list[str]]:
        """Follow what other processes added or removed; returns (added ids, removed ids).

        With several processes on one database, `/service add` runs in whichever process the
        command reached; the others learn of it here (scheduled every minute by the app).
        """
        async with self._sessions() as session:
            stored = {row.id: row for row in (await session.exec(select(CustomServiceRow))).all()}
        known = {s.id for s in self._catalog if s.id.startswith(CUSTOM_PREFIX)}
        added, removed = [], []
        for service_id in sorted(stored.keys() - known):
            service = custom_service_def(stored[service_id])
            try:
                self._catalog.add(service)
            except CatalogError as exc:  # a built-in took the name since: keep the built-in
                log.warning("custom service %s not loaded: %s", service_id, exc)
                continue
            self.on_new_urls(self._poller.track(service))
            added.append(service_id)
        for service_id in sorted(known - stored.keys()):
            self._catalog.remove(service_id)
            self.on_dropped_urls(self._poller.untrack(service_id))
            removed.append(service_id)
        if added or removed:
            log.info("custom services followed: +%s -%s", added or "none", removed or "none")
        return added, removed


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.strip().casefold()).strip("-")[:50]


REFRESH_SECONDS = 60.0
"""How soon a service added through another process is followed here."""


class Refreshable(Protocol):
    """What following the database needs (`CustomServices` is one)."""

    async def refresh(self) -> tuple[list[str], list[str]]: ...


async def follow_database(
    custom: Refreshable,
    stop: asyncio.Event,
    *,
    clock: Clock,
    every_seconds: float = REFRESH_SECONDS,
) -> None:
    """Reload the custom services every ``every_seconds`` until ``stop`` is set.

    Not a scheduler job: followers keep the scheduler paused, yet must answer for services that
    `/service add` stored through another process."""
    database = DatabaseOutageLog(log, "following custom services", clock=clock)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=every_seconds)
        if stop.is_set():
            return
        with database.watching("reloading custom services failed; trying again in a minute"):
            await custom.refresh()
