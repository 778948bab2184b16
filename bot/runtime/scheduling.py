"""Scheduled jobs on APScheduler: one interval job per status source, and the jobs each part
declares (`bot.core.jobs.Job`: crowd watch, reminders, retention).

With several processes on PostgreSQL only the leader (bot/runtime/leader.py) runs the scheduler;
the others keep it paused, ready to resume when they are elected.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.jobs import Job
from bot.services.custom_services import CustomServices
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


def add_jobs(scheduler: AsyncIOScheduler, jobs: Iterable[Job]) -> None:
    """Schedule each part's recurring jobs (leader-only, like everything scheduled)."""
    for job in jobs:
        scheduler.add_job(
            job.run,
            "interval",
            seconds=job.every.total_seconds(),
            id=job.id,
            max_instances=1,
            coalesce=True,
        )


def follow_custom_polls(
    scheduler: AsyncIOScheduler,
    poller: StatusPoller,
    custom: CustomServices,
    interval_seconds: float,
) -> None:
    """Poll the pages of custom services as they are added, stop when they are removed."""

    def added(urls: list[str]) -> None:
        for url in urls:
            add_poll_job(scheduler, poller, url, interval_seconds=interval_seconds, first_run=None)

    def dropped(urls: list[str]) -> None:
        for url in urls:
            if scheduler.get_job(job_id(url)):
                scheduler.remove_job(job_id(url))

    custom.on_new_urls.subscribe(added)
    custom.on_dropped_urls.subscribe(dropped)


def take_over(scheduler: AsyncIOScheduler, now: datetime, *, spread_seconds: float = 5.0) -> None:
    """Run the scheduled jobs here from now on (this process was just elected leader).

    Polls are pulled forward, spread over a few seconds: the previous leader may have died a
    while ago, and 300 pages at the same instant would be a burst."""
    polls = [job for job in scheduler.get_jobs() if job.id.startswith("poll:")]
    for index, job in enumerate(polls):
        job.modify(next_run_time=now + timedelta(seconds=spread_seconds * index / len(polls)))
    scheduler.resume()
