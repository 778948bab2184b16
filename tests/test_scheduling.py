"""Polling jobs are scheduled to run, in every mode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.runtime.scheduling import add_poll_job, create_scheduler, job_id


class NoPoller:
    urls = ("https://a.example/api/v2/summary.json", "https://b.example/feed")

    async def poll(self, url: str) -> None:
        raise AssertionError("not run in this test")


@pytest.mark.parametrize("first_run", [None, datetime(2030, 1, 1, tzinfo=UTC)])
async def test_every_source_has_a_scheduled_next_run(first_run: datetime | None) -> None:
    poller = NoPoller()
    scheduler = create_scheduler(poller, interval_seconds=30, first_run=first_run)  # type: ignore[arg-type]
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {job_id(u) for u in poller.urls}
        # APScheduler 3 pauses a job added with next_run_time=None: that must never happen.
        assert all(job.next_run_time is not None for job in jobs.values())
        if first_run is not None:
            assert {job.next_run_time for job in jobs.values()} == {first_run}
        add_poll_job(scheduler, poller, "https://c.example/x", interval_seconds=30, first_run=None)  # type: ignore[arg-type]
        assert scheduler.get_job(job_id("https://c.example/x")).next_run_time is not None
    finally:
        scheduler.shutdown(wait=False)
