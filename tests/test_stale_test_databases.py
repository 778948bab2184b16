"""A test run killed before its teardown leaves its PostgreSQL database behind; the next run
drops it (the server outlives runs), and leaves the databases of runs still going alone."""

from __future__ import annotations

import os
import time

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import (
    STALE_TEST_DATABASE_SECONDS,
    admin_url,
    fresh_database_name,
    sweep_test_databases,
)

pytestmark = pytest.mark.postgres


async def databases(dsn: str) -> set[str]:
    connection = await asyncpg.connect(dsn)
    try:
        return {row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")}
    finally:
        await connection.close()


async def test_databases_left_by_killed_runs_are_dropped_and_others_kept(
    postgres_url: str,
) -> None:
    base = os.environ["TEST_DATABASE_URL"]
    dsn = admin_url(base)
    now = time.time()
    stale = fresh_database_name(now - STALE_TEST_DATABASE_SECONDS - 60)
    stale_in_use = fresh_database_name(now - STALE_TEST_DATABASE_SECONDS - 120)
    recent = fresh_database_name(now - 60)  # another run, still going
    unrelated = "outagebot_test_kept_by_hand"  # not a name a run gives: never ours to drop
    admin = await asyncpg.connect(dsn)
    created = [stale, stale_in_use, recent, unrelated]
    holder = None
    try:
        for name in created:
            await admin.execute(f'CREATE DATABASE "{name}"')
        holder = await asyncpg.connect(admin_url(base, stale_in_use))

        dropped = await sweep_test_databases(dsn, now)

        left = await databases(dsn)
        assert stale in dropped
        assert stale not in left
        assert {stale_in_use, recent, unrelated} <= left
        assert make_url(postgres_url).database in left  # this run's own
    finally:
        if holder is not None:
            await holder.close()
        for name in created:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
