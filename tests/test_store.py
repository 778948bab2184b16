"""The store on SQLite and PostgreSQL: migrations, idempotent snapshots, state history."""

from __future__ import annotations

from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import SQLModel, select

from bot.core.service_state import ServiceState
from bot.core.status import ComponentStatus, Indicator
from bot.store import catalog_store, migrate, service_state_store, source_store
from bot.store.engine import session_factory
from bot.store.models import IncidentRow, IncidentUpdateRow
from tests.conftest import FakeClock
from tests.helpers import catalog_for, incident, snapshot

URL = "https://status.example.com/api/v2/summary.json"


async def test_migrations_reach_head_and_match_the_models(engine: AsyncEngine) -> None:
    assert await migrate.current_revision(engine) == migrate.head_revision()

    def diff(sync_connection: object) -> list[object]:
        context = MigrationContext.configure(sync_connection)  # type: ignore[arg-type]
        return list(compare_metadata(context, SQLModel.metadata))

    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []


async def test_upgrade_twice_is_harmless(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    assert await migrate.current_revision(engine) == migrate.head_revision()


async def test_snapshot_round_trip_is_idempotent(engine: AsyncEngine, clock: FakeClock) -> None:
    sessions = session_factory(engine)
    started = clock.now - timedelta(minutes=30)
    open_incident = incident(
        "inc1",
        started=started,
        updates=(
            (
                "identified",
                "Fix is rolling out. <@&123> @everyone",
                clock.now - timedelta(minutes=5),
            ),
            ("investigating", "We are looking into errors.", started),
        ),
    )
    snap = snapshot(
        indicator=Indicator.MAJOR,
        components=(("API", ComponentStatus.MAJOR_OUTAGE), ("Web", ComponentStatus.OPERATIONAL)),
        incidents=(open_incident,),
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for({"example": URL}))
        source = await source_store.get_source(session=session, url=URL)
        assert source is not None
        for _ in range(3):  # the same page read three times stores everything once
            await source_store.record_snapshot(
                session=session,
                source=source,
                snapshot=snap,
                etag='"e1"',
                last_modified=None,
                now=clock.now,
            )
        updates = await session.exec(select(func.count()).select_from(IncidentUpdateRow))
        assert updates.one() == 2
        loaded = await source_store.load_snapshot(session=session, url=URL, updates_per_incident=5)

    assert loaded is not None
    assert loaded.indicator is Indicator.MAJOR
    assert [(c.name, c.status) for c in loaded.components] == [
        ("API", ComponentStatus.MAJOR_OUTAGE),
        ("Web", ComponentStatus.OPERATIONAL),
    ]
    (stored,) = loaded.incidents
    assert stored.started_at == started
    assert stored.started_at is not None
    assert stored.started_at.tzinfo is not None
    assert [u.status for u in stored.updates] == ["identified", "investigating"]
    assert stored.updates[0].body.endswith("@everyone")  # stored as written; escaped when rendered


async def test_incident_missing_from_summary_is_resolved(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sessions = session_factory(engine)
    open_incident = incident(
        "inc1", started=clock.now, updates=(("investigating", "Looking", clock.now),)
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for({"example": URL}))
        source = await source_store.get_source(session=session, url=URL)
        assert source is not None
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(incidents=(open_incident,)),
            etag=None,
            last_modified=None,
            now=clock.now,
        )
        later = clock.advance(minutes=40)
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(),
            etag=None,
            last_modified=None,
            now=later,
        )
        row = (await session.exec(select(IncidentRow))).one()
        loaded = await source_store.load_snapshot(session=session, url=URL)

    assert row.status == "resolved"
    assert row.resolved_at is not None
    assert loaded is not None
    assert loaded.incidents == ()


async def test_state_since_moves_only_on_change(engine: AsyncEngine, clock: FakeClock) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for({"example": URL}))
        first = clock.now
        assert await service_state_store.set_service_state(
            session=session, service_id="example", state=ServiceState.OPERATIONAL, now=first
        )
        clock.advance(minutes=10)
        assert not await service_state_store.set_service_state(
            session=session, service_id="example", state=ServiceState.OPERATIONAL, now=clock.now
        )
        record = (await service_state_store.service_states(session=session))["example"]
        assert record.since == first
        assert record.checked_at == clock.now
        outage = clock.advance(minutes=1)
        assert await service_state_store.set_service_state(
            session=session, service_id="example", state=ServiceState.MAJOR_OUTAGE, now=outage
        )
        record = (await service_state_store.service_states(session=session))["example"]
    assert record.state is ServiceState.MAJOR_OUTAGE
    assert record.since == outage


async def test_failures_keep_last_good_content(engine: AsyncEngine, clock: FakeClock) -> None:
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for({"example": URL}))
        source = await source_store.get_source(session=session, url=URL)
        assert source is not None
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(),
            etag='"v1"',
            last_modified=None,
            now=clock.now,
        )
        await source_store.record_failure(
            session=session, source=source, error="HTTP 503", now=clock.now
        )
        await source_store.record_failure(
            session=session, source=source, error="HTTP 503", now=clock.now
        )
        again = await source_store.get_source(session=session, url=URL)
        loaded = await source_store.load_snapshot(session=session, url=URL)
    assert again is not None
    assert (again.consecutive_failures, again.last_error, again.etag) == (2, "HTTP 503", '"v1"')
    assert loaded is not None
    assert loaded.components[0].name == "API"


async def test_sync_catalog_is_repeatable(engine: AsyncEngine) -> None:
    sessions = session_factory(engine)
    catalog = catalog_for(
        {"a": URL, "b": URL, "c": "https://other.example.com/api/v2/summary.json"}
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        states = await service_state_store.service_states(session=session)
        counts = await service_state_store.open_incident_counts(session=session)
    assert sorted(states) == ["a", "b", "c"]
    assert all(s.state is ServiceState.UNKNOWN for s in states.values())
    assert counts == {}
