"""Polling jobs on APScheduler: one interval job per status source."""

from __future__ import annotations

from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.sources.poller import StatusPoller


def create_scheduler(
    poller: StatusPoller, *, interval_seconds: float, first_run: datetime | None
) -> AsyncIOScheduler:
    """A scheduler polling each source every ``interval_seconds``.

    Jitter spreads 300 sources over the interval instead of bursting them together; one run at a
    time per source, and missed runs coalesce, so a slow page never piles up requests.
    """
    scheduler = AsyncIOScheduler(timezone="UTC")
    for url in poller.urls:
        scheduler.add_job(
            poller.poll,
            "interval",
            args=(url,),
            seconds=interval_seconds,
            jitter=max(1.0, interval_seconds / 10),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(interval_seconds),
            next_run_time=first_run,
            id=f"poll:{url}",
        )
    return scheduler
