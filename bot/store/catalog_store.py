"""The catalog aggregate: which services and polled sources exist (seeded from the catalog)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.migrate import MIGRATION_LOCK_KEY
from bot.store.models import (
    ServiceRow,
    SourceRow,
)


class CatalogService(Protocol):
    """What seeding needs of a catalog service (``bot.sources.catalog.ServiceDef`` is one)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def provider(self) -> str: ...


class CatalogSource(Protocol):
    """What seeding needs of a polled source (``bot.sources.catalog.SourceDef`` is one)."""

    @property
    def kind(self) -> str: ...


class SeedableCatalog(Protocol):
    """The catalog as the store sees it: the store sits below the sources and never imports them."""

    def __iter__(self) -> Iterator[CatalogService]: ...
    def source_urls(self) -> Mapping[str, CatalogSource]: ...


async def sync_catalog(*, session: AsyncSession, catalog: SeedableCatalog) -> None:
    """Make sure every catalog service and polled source has a row (names kept up to date).

    Processes starting together on a fresh database all seed at once: on PostgreSQL they take
    turns under the migration lock, and the inserts are upserts so a race cannot fail anyway."""
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        await session.exec(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
    services = [
        {"id": service.id, "name": service.name, "provider": service.provider}
        for service in catalog
    ]
    for chunk in _chunks(services):
        insert_services = _insert_for(ServiceRow, postgres=postgres).values(chunk)
        await session.exec(
            insert_services.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "name": insert_services.excluded.name,
                    "provider": insert_services.excluded.provider,
                },
            )
        )
    sources = [{"url": url, "kind": source.kind} for url, source in catalog.source_urls().items()]
    for chunk in _chunks(sources):
        insert_sources = _insert_for(SourceRow, postgres=postgres).values(chunk)
        await session.exec(insert_sources.on_conflict_do_nothing(index_elements=["url"]))
    await session.commit()


def _chunks(rows: list[dict[str, str]], size: int = 1000) -> Iterator[list[dict[str, str]]]:
    # One INSERT of many rows binds a parameter per column and row: PostgreSQL allows 32,767
    # (SQLite, by default, 32,766), fewer than a catalog of 10,000 services needs.
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _insert_for(table: type[SQLModel], *, postgres: bool) -> Any:
    # Both dialects spell an upsert ON CONFLICT, each with its own construct.
    return postgresql.insert(table) if postgres else sqlite.insert(table)
