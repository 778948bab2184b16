"""What runs on a schedule: the polls (`PollSchedule`) and the jobs each part declares
(`bot.core.jobs.Job` on APScheduler: crowd watch, reminders, retention).

With several processes on PostgreSQL only the leader (bot/runtime/leader.py) runs them; the
others keep both paused, ready to resume when they are elected.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.jobs import Job
from bot.runtime.poll_schedule import PollSchedule
from bot.services.custom_services import CustomServices


def create_scheduler() -> AsyncIOScheduler:
    """The scheduler of the parts' recurring jobs (polls have `PollSchedule`, see its why)."""
    return AsyncIOScheduler(timezone="UTC")


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


def follow_custom_polls(polls: PollSchedule, custom: CustomServices) -> None:
    """Poll the pages of custom services as they are added, stop when they are removed."""

    def added(urls: list[str]) -> None:
        for url in urls:
            polls.add(url)

    def dropped(urls: list[str]) -> None:
        for url in urls:
            polls.remove(url)

    custom.on_new_urls.subscribe(added)
    custom.on_dropped_urls.subscribe(dropped)


def take_over(scheduler: AsyncIOScheduler, polls: PollSchedule, now: datetime) -> None:
    """Run the scheduled jobs and the polls here from now on (this process was just elected).

    Polls are pulled forward, spread over a few seconds (`PollSchedule.resume`): the previous
    leader may have died a while ago. The other jobs keep their times."""
    polls.resume(now)
    scheduler.resume()


def stand_by(scheduler: AsyncIOScheduler, polls: PollSchedule) -> None:
    """Run nothing scheduled here (this process stopped leading); what runs finishes."""
    polls.pause()
    scheduler.pause()
