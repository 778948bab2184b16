"""Processes starting together on a fresh PostgreSQL database (`docker compose up --scale`)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.app import open_app
from bot.settings import Settings
from bot.sources.catalog import load_catalog
from bot.store import catalog_store, migrate
from bot.store.engine import create_engine, session_factory
from bot.store.models import ServiceRow, SourceRow

STARTUPS = 4
pytestmark = pytest.mark.postgres


@pytest.fixture
async def fresh_postgres_url(postgres_url: str) -> AsyncIterator[str]:
    """A database nobody has migrated or seeded yet (the session one already is)."""
    admin = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    name = f"outagebot_fresh_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_url.rsplit("/", 1)[0] + f"/{name}"
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_concurrent_startups_on_a_fresh_database_all_succeed(
    fresh_postgres_url: str,
) -> None:
    settings = Settings(_env_file=None, database_url=fresh_postgres_url)  # type: ignore[call-arg]
    all_open = asyncio.Barrier(STARTUPS)

    async def start_up() -> None:
        try:
            async with open_app(settings):
                await all_open.wait()  # every start-up has migrated and seeded before any closes
        except BaseException:
            await all_open.abort()  # the others stop waiting for one that will never come
            raise

    results = await asyncio.gather(*(start_up() for _ in range(STARTUPS)), return_exceptions=True)

    assert [r for r in results if r is not None] == []
    await assert_catalog_stored_once(fresh_postgres_url)


async def test_seeds_racing_on_a_migrated_database_all_succeed(fresh_postgres_url: str) -> None:
    """The seed alone, all at the same moment: every one reads an empty table first."""
    engines = [create_engine(fresh_postgres_url) for _ in range(STARTUPS)]
    await migrate.upgrade(engines[0])
    catalog = load_catalog(None)
    all_connected = asyncio.Barrier(STARTUPS)

    async def seed(engine: AsyncEngine) -> None:
        async with session_factory(engine)() as session:
            await session.connection()  # connected already: the seeds start together
            await all_connected.wait()
            await catalog_store.sync_catalog(session=session, catalog=catalog)

    try:
        results = await asyncio.gather(*(seed(e) for e in engines), return_exceptions=True)
    finally:
        for engine in engines:
            await engine.dispose()

    assert [r for r in results if r is not None] == []
    await assert_catalog_stored_once(fresh_postgres_url)


async def assert_catalog_stored_once(url: str) -> None:
    catalog = load_catalog(None)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            services = (await session.exec(select(ServiceRow.id))).all()
            sources = (await session.exec(select(func.count()).select_from(SourceRow))).one()
    finally:
        await engine.dispose()
    assert sorted(services) == sorted(service.id for service in catalog)
    assert sources == len(catalog.source_urls())
