"""Uptime and MTTR, pure and from stored history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.backoff import backoff_delay
from bot.core.history import PastIncident, mean_time_to_recovery, uptime_percent
from bot.store import catalog_store, detection_store, source_store
from bot.store.engine import session_factory
from tests.conftest import FakeClock
from tests.helpers import catalog_for, incident, snapshot

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def past(start_h: float, end_h: float | None, impact: str = "major") -> PastIncident:
    end = T0 + timedelta(hours=end_h) if end_h is not None else None
    return PastIncident(started_at=T0 + timedelta(hours=start_h), resolved_at=end, impact=impact)


def test_uptime_counts_overlaps_once_and_ignores_minor() -> None:
    incidents = [past(1, 3), past(2, 4), past(10, 11, "minor"), past(20, 21, "critical")]
    # down 1h-4h and 20h-21h: 4 hours of 24
    assert uptime_percent(incidents, start=T0, end=T0 + DAY) == pytest.approx(100 * 20 / 24)


def test_uptime_clips_to_the_window_and_open_incidents_run_to_the_end() -> None:
    incidents = [past(-5, 2), past(22, None)]
    assert uptime_percent(incidents, start=T0, end=T0 + DAY) == pytest.approx(100 * 20 / 24)
    assert uptime_percent([], start=T0, end=T0 + DAY) == 100.0
    with pytest.raises(ValueError, match="end after"):
        uptime_percent([], start=T0, end=T0)


def test_mean_time_to_recovery() -> None:
    assert mean_time_to_recovery([past(0, 1), past(5, 8, "minor"), past(9, None)]) == timedelta(
        hours=2
    )
    assert mean_time_to_recovery([past(9, None)]) is None


@pytest.mark.parametrize(
    ("failures", "jitter", "expected"),
    [
        (0, 0.5, 0.0),
        (1, 0.5, 30.0),
        (2, 0.5, 60.0),
        (3, 0.0, 96.0),
        (3, 1.0, 144.0),
        (30, 0.5, 900.0),
    ],
)
def test_backoff_doubles_with_jitter_up_to_a_cap(
    failures: int, jitter: float, expected: float
) -> None:
    assert backoff_delay(failures, base=30, cap=900, jitter=jitter) == pytest.approx(expected)


async def test_incident_history_from_the_store(engine: AsyncEngine, clock: FakeClock) -> None:
    url = "https://status.example.com/api/v2/summary.json"
    sessions = session_factory(engine)
    old = incident(
        "old",
        started=clock.now - 40 * DAY,
        updates=(("resolved", "x", clock.now - 40 * DAY),),
        resolved=clock.now - 40 * DAY + timedelta(hours=1),
    )
    recent = incident(
        "new",
        started=clock.now - 2 * DAY,
        updates=(("resolved", "y", clock.now - DAY),),
        resolved=clock.now - 2 * DAY + timedelta(hours=3),
    )
    ongoing = incident(
        "now", started=clock.now - timedelta(hours=1), updates=(("investigating", "z", clock.now),)
    )
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog_for({"svc": url}))
        source = await source_store.get_source(session=session, url=url)
        assert source is not None
        assert source.id is not None
        await source_store.record_snapshot(
            session=session,
            source=source,
            snapshot=snapshot(incidents=(old, recent, ongoing)),
            etag=None,
            last_modified=None,
            now=clock.now,
        )
        await detection_store.link_incidents(
            session=session,
            service_id="svc",
            source_id=source.id,
            external_ids=["old", "new", "now"],
        )
        await session.commit()
        history = await detection_store.incident_history(
            session=session, service_id="svc", since=clock.now - 30 * DAY
        )
    assert sorted(h.started_at for h in history) == [recent.started_at, ongoing.started_at]
    assert mean_time_to_recovery(history) == timedelta(hours=3)
    window = uptime_percent(history, start=clock.now - 30 * DAY, end=clock.now)
    assert window == pytest.approx(100 * (1 - 4 / (30 * 24)))
