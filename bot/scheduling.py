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
        add_poll_job(scheduler, poller, url, interval_seconds=interval_seconds, first_run=first_run)
    return scheduler


def add_poll_job(
    scheduler: AsyncIOScheduler,
    poller: StatusPoller,
    url: str,
    *,
    interval_seconds: float,
    first_run: datetime | None,
) -> None:
    """Poll ``url`` every interval (a source added at run time uses this too)."""
    # APScheduler 3 adds a job *paused* when next_run_time=None is passed explicitly, so only
    # pass it to pull the first run forward; otherwise the trigger picks it.
    first = {"next_run_time": first_run} if first_run is not None else {}
    scheduler.add_job(
        poller.poll,
        "interval",
        args=(url,),
        seconds=interval_seconds,
        jitter=max(1.0, interval_seconds / 10),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(1, int(interval_seconds)),
        id=job_id(url),
        replace_existing=True,
        **first,
    )


def job_id(url: str) -> str:
    """The scheduler job id of a source URL."""
    return f"poll:{url}"
