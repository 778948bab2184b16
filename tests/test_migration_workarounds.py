"""Migration 0014 drops workarounds.incident_subject_id and keeps every workaround and vote."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import migrate
from bot.store.engine import create_engine
from tests.conftest import empty_tables


def _downgrade(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _workaround_columns(connection: Connection) -> set[str]:
    return {column["name"] for column in inspect(connection).get_columns("workarounds")}


async def test_dropping_the_incident_id_keeps_workarounds_and_votes(database_url: str) -> None:
    engine: AsyncEngine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as connection:  # back to before the column was dropped
            await connection.run_sync(_downgrade, "0013")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO workarounds (id, service_id, title, steps, author_hash, "
                    "origin_platform, origin_community_id, incident_subject_id, created_at, "
                    "hidden_globally) VALUES (1, 'svc', 'Use the EU endpoint', 'steps', 'a', "
                    "'discord', 'g', 'inc-1', '2026-11-27 12:00:00+00:00', false)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO workaround_votes (workaround_id, voter_hash, worked, at) "
                    "VALUES (1, 'v', true, '2026-11-27 12:05:00+00:00')"
                )
            )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            columns = await connection.run_sync(_workaround_columns)
            titles = (await connection.execute(text("SELECT title FROM workarounds"))).all()
            votes = (
                await connection.execute(text("SELECT voter_hash FROM workaround_votes"))
            ).all()
        assert "incident_subject_id" not in columns
        assert [t for (t,) in titles] == ["Use the EU endpoint"]
        assert [v for (v,) in votes] == ["v"]  # a table rebuild would have cascaded them away
    finally:
        if engine.dialect.name == "postgresql":  # the PostgreSQL database outlives the test
            await empty_tables(engine)
        await engine.dispose()
