"""Shared fixtures: databases (SQLite always, PostgreSQL when TEST_DATABASE_URL is set), clocks."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel

from bot.store import migrate
from bot.store.engine import create_engine

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PG_SKIP_REASON = "TEST_DATABASE_URL is not set: PostgreSQL tests need a server (CI sets it)"
# Every log record of the run is scanned for secrets (tests/log_scan.py).
pytest_plugins = ("tests.log_scan",)

# With CI set, hypothesis draws the same examples every run, so a failure there reproduces on
# any machine with `CI=true pytest …`; print_blob prints the failing example as a
# @reproduce_failure line; no deadline, as timing on a loaded CI machine is noise. Recent
# hypothesis has this profile built in; registered here so the suite does not depend on it.
# Tests' own @settings override only the settings they name.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    print_blob=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
if "CI" in os.environ:
    hypothesis_settings.load_profile("ci")


class FakeClock:
    """A clock tests move by hand; never the wall clock."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


TEST_DATABASE = re.compile(r"outagebot_test_(\d+)_[0-9a-f]+")
STALE_TEST_DATABASE_SECONDS = 6 * 3600
"""No test run lasts this long: an older test database is one a killed run left behind (a
pytest-timeout ends the process before the session's teardown drops it)."""


def fresh_database_name(created: float) -> str:
    """A name of its own for this run's database, telling when it was made."""
    return f"outagebot_test_{int(created)}_{secrets.token_hex(4)}"


def admin_url(test_database_url: str, database: str | None = None) -> str:
    """asyncpg's DSN for the database named in TEST_DATABASE_URL (where the others are created
    and dropped), or for `database` on the same server."""
    url = make_url(test_database_url).set(drivername="postgresql")
    if database is not None:
        url = url.set(database=database)
    return url.render_as_string(hide_password=False)


async def sweep_test_databases(admin_dsn: str, now: float) -> list[str]:
    """Drop the test databases that killed runs left behind on the server; returns their names.
    One still in use (a run on another machine that outlived the limit) is left alone."""
    connection = await asyncpg.connect(admin_dsn)
    dropped = []
    try:
        for row in await connection.fetch("SELECT datname FROM pg_database"):
            found = TEST_DATABASE.fullmatch(row["datname"])
            if found is None or now - int(found[1]) < STALE_TEST_DATABASE_SECONDS:
                continue
            try:
                await connection.execute(f'DROP DATABASE "{row["datname"]}"')
            except asyncpg.ObjectInUseError:
                continue
            dropped.append(row["datname"])
    finally:
        await connection.close()
    return dropped


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped afterwards."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        if os.environ.get("CI"):  # a PostgreSQL test skipped in CI would hide a failure
            pytest.fail("TEST_DATABASE_URL is not set in CI (.ci/run sets it)")
        pytest.skip(PG_SKIP_REASON)
    url = make_url(base)
    name = fresh_database_name(time.time())
    admin_dsn = admin_url(base)

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(admin_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(sweep_test_databases(admin_dsn, time.time()))
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'outagebot.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def empty_tables(engine: AsyncEngine) -> None:
    """Every table emptied and its ids restarted (the PostgreSQL database outlives a test)."""
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database, emptied after the test (the PostgreSQL one outlives a test)."""
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        if engine.dialect.name == "postgresql":
            await empty_tables(engine)
        await engine.dispose()


@pytest.fixture
async def pg_engine(postgres_url: str) -> AsyncIterator[AsyncEngine]:
    """The PostgreSQL test database alone (for tests that cut or proxy it), migrated, emptied
    afterwards."""
    engine = create_engine(postgres_url)
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await empty_tables(engine)
        await engine.dispose()
