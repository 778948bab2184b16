"""Catalog component names that a status page no longer lists, and what a service reads then.

Pages rename components ("console.anthropic.com" became "platform.claude.com (formerly
console.anthropic.com)"). A catalog entry naming the old component would judge its service by
what is left: nothing, or a sibling component that is fine while the renamed one is down. So a
service with a missing component is judged by the page as a whole as well, and the operator is
told that the catalog is stale (in the log, `outagebot check` and `outagebot services`).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.core.service_state import ServiceState, derive_state, matches_components, worst
from bot.core.status import Indicator, Snapshot
from bot.settings import Settings
from bot.sources.catalog import Catalog, ServiceDef
from bot.store import source_store
from bot.store.engine import create_engine, session_factory

_INCIDENT_IMPACTS = {i.value: i for i in (Indicator.MINOR, Indicator.MAJOR, Indicator.CRITICAL)}


def missing_components(page: Snapshot, wanted: Sequence[str]) -> tuple[str, ...]:
    """The names of interest that match no component or group of the page, in catalog order.

    A payload listing no components at all (status.json, a feed, a pushed incident) proves
    nothing missing, so it gives none.
    """
    if not page.components:
        return ()
    return tuple(
        name
        for name in wanted
        if not any(matches_components(c.name, c.group, (name,)) for c in page.components)
    )


def service_state(page: Snapshot | None, wanted: Sequence[str]) -> ServiceState:
    """The state of a service whose page gave ``page`` (None: unreadable).

    As ``derive_state``, except that while some named components are missing the page's own
    word (its indicator, or its worst open incident) counts as well: the missing one may be the
    one in trouble, and "Operational" must not rest on a stale catalog.
    """
    state = derive_state(page, wanted)
    if page is None or state is ServiceState.UNKNOWN or not missing_components(page, wanted):
        return state
    return worst([state, page_state(page)])


def page_state(page: Snapshot) -> ServiceState:
    """What the page as a whole says: its indicator, or its worst open incident if worse."""
    indicators = [page.indicator] + [
        _INCIDENT_IMPACTS[i.impact] for i in page.open_incidents if i.impact in _INCIDENT_IMPACTS
    ]
    bare = replace(page, components=())
    return worst(derive_state(replace(bare, indicator=indicator)) for indicator in indicators)


def stale_warnings(page: Snapshot, services: Iterable[ServiceDef]) -> list[str]:
    """One line per service whose catalog entry names components this page does not list."""
    lines = []
    for service in services:
        missing = missing_components(page, service.components)
        if missing:
            names = ", ".join(repr(name) for name in missing)
            lines.append(
                f"catalog may be stale: {service.id} names component(s) {names} that the page"
                " does not list; it is judged by the page's indicator and incidents as well"
            )
    return lines


def services_of_page(
    catalog: Catalog, page: Snapshot, source_url: str | None = None
) -> list[ServiceDef]:
    """Catalog services that read this page: by source URL, else by the page's own address."""
    if source_url is not None:
        by_url = [s for s in catalog if any(src.url == source_url for src in s.sources)]
        if by_url:
            return by_url
    host = _host(page.page.url)
    if host is None:
        return []
    return [
        s
        for s in catalog
        if _host(s.status_page) == host or any(_host(src.url) == host for src in s.official_sources)
    ]


def _host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


class StaleNamesLog:
    """Warns once when a service's named components go missing from its page, not every poll."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self._missing: dict[tuple[str, str], tuple[str, ...]] = {}

    def forget(self, service_id: str) -> None:
        """Drop what was seen for a service that is no longer polled."""
        self._missing = {k: v for k, v in self._missing.items() if k[0] != service_id}

    def observe(self, service: ServiceDef, page_url: str, page: Snapshot) -> None:
        """Note what a full read of ``page_url`` says about ``service``'s component names."""
        missing = missing_components(page, service.components)
        key = (service.id, page_url)
        if self._missing.get(key, ()) == missing:
            return
        self._missing[key] = missing
        if missing:
            # %r: custom services' names are typed by people; repr keeps them on one line.
            self._log.warning(
                "catalog may be stale: service %s names component(s) %r that %s does not list;"
                " judging it by the page's indicator and incidents as well",
                service.id,
                list(missing),
                page_url,
            )
        else:
            self._log.info("service %s: every named component is on %s again", service.id, page_url)


STORED_READ_SECONDS = 10.0


def stored_page_warnings(settings: Settings, catalog: Catalog) -> dict[str, list[str]]:
    """Per service id, the stale-catalog warnings for the pages the bot last stored.

    For ``outagebot services``, which otherwise only reads the catalog: a database that was
    never created is left alone (nothing stored yet), and one that cannot be read is a note on
    stderr, not a failure of the listing.
    """
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return {}
    try:
        return asyncio.run(
            asyncio.wait_for(_stored_warnings(settings, catalog), STORED_READ_SECONDS)
        )
    except (SQLAlchemyError, OSError, TimeoutError, ValueError) as exc:
        print(
            f"outagebot services: stored pages not read ({type(exc).__name__}),"
            " so component names were not checked against them",
            file=sys.stderr,
        )
        return {}


async def _stored_warnings(settings: Settings, catalog: Catalog) -> dict[str, list[str]]:
    engine = create_engine(settings.database_url)
    found: dict[str, list[str]] = {}
    try:
        async with session_factory(engine)() as session:
            for source_url in catalog.source_urls():
                services = [
                    s
                    for s in catalog
                    if s.components and any(x.url == source_url for x in s.sources)
                ]
                if not services:
                    continue
                page = await source_store.load_snapshot(session=session, url=source_url)
                if page is None:
                    continue  # never read yet
                for service in services:
                    found.setdefault(service.id, []).extend(stale_warnings(page, [service]))
    finally:
        await engine.dispose()
    return {service_id: lines for service_id, lines in found.items() if lines}
