"""The composition's lifecycle: stops in reverse, only what started, slow steps side by side."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.core.jobs import Job
from bot.core.observers import Observers
from bot.runtime.lifecycle import Lifecycle
from bot.runtime.scheduling import add_jobs
from bot.services.reminders import Reminders


def recorder(log: list[str], name: str):  # type: ignore[no-untyped-def]
    async def stop() -> None:
        log.append(name)

    return stop


async def test_parts_stop_in_reverse_order_of_their_start() -> None:
    stopped: list[str] = []
    async with Lifecycle(5.0) as parts:
        for name in ("web", "outbox", "discord"):
            parts.on_stop(name, recorder(stopped, name))
        parts.callback(stopped.append, "scheduler")
    assert stopped == ["scheduler", "discord", "outbox", "web"]


async def test_a_failed_start_stops_what_had_started_and_nothing_else() -> None:
    stopped: list[str] = []

    async def start_slack() -> None:
        raise RuntimeError("slack refused the token")

    async def serve() -> None:
        async with Lifecycle(5.0) as parts:
            parts.on_stop("web", recorder(stopped, "web"))
            await start_slack()
            parts.on_stop("slack", recorder(stopped, "slack"))  # never reached

    with pytest.raises(RuntimeError, match="slack refused"):
        await serve()
    assert stopped == ["web"]


async def test_slow_steps_stop_side_by_side_after_the_first_call() -> None:
    order: list[str] = []
    flushed = asyncio.Event()

    async def outbox() -> None:  # finishes only once the poll drain has run: needs both at once
        await flushed.wait()
        order.append("outbox")

    async def polls() -> None:
        order.append("polls")
        flushed.set()

    async with Lifecycle(5.0) as parts:
        parts.on_stop_together(
            {"the outbox": outbox, "polls in flight": polls}, first=lambda: order.append("pause")
        )
    assert order == ["pause", "polls", "outbox"]


def test_observers_are_told_in_subscription_order() -> None:
    heard: list[str] = []
    events: Observers[Sequence[str]] = Observers()
    events(["before anyone listens"])
    events.subscribe(lambda batch: heard.append("outbox:" + ",".join(batch)))
    events.subscribe(lambda batch: heard.append(f"metrics:{len(batch)}"))
    events(["opened", "updated"])
    assert heard == ["outbox:opened,updated", "metrics:2"]


async def test_declared_jobs_are_scheduled_one_at_a_time_at_their_cadence() -> None:
    async def tick() -> None:
        return None

    scheduler = AsyncIOScheduler(timezone="UTC")
    add_jobs(
        scheduler, [Job("crowd", tick, timedelta(minutes=1)), Job("x", tick, timedelta(hours=2))]
    )
    crowd, other = scheduler.get_job("crowd"), scheduler.get_job("x")
    assert crowd is not None
    assert other is not None
    assert crowd.trigger.interval == timedelta(minutes=1)
    assert other.trigger.interval == timedelta(hours=2)
    assert (crowd.max_instances, crowd.coalesce) == (1, True)


def test_reminders_declare_no_job_when_they_are_off() -> None:
    def never() -> None:
        raise AssertionError("not used")

    off = Reminders(sessions=never, clock=never, every=timedelta(0))  # type: ignore[arg-type]
    on = Reminders(sessions=never, clock=never, every=timedelta(hours=4))  # type: ignore[arg-type]
    assert off.jobs() == []
    assert [(job.id, job.every) for job in on.jobs()] == [("reminders", timedelta(minutes=5))]
