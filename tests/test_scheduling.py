"""When sources are polled (`PollSchedule`), and the scheduler of the other jobs."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import datetime, timedelta

import pytest

from bot.runtime.poll_schedule import PollSchedule
from bot.runtime.scheduling import create_scheduler, stand_by, take_over
from tests.conftest import FakeClock

INTERVAL = 30.0
URLS = [f"https://page{i}.example/api/v2/summary.json" for i in range(6)]


class Polls:
    """A poll that records which URL it read, and can be held open to look "still running"."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.read: list[str] = []
        self.times: list[tuple[str, datetime]] = []
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, url: str) -> None:
        self.read.append(url)
        if self.clock is not None:
            self.times.append((url, self.clock()))
        await self.hold.wait()


def schedule(clock: FakeClock, polls: Polls, urls: list[str] = URLS, **kw: object) -> PollSchedule:
    return PollSchedule(polls, urls, interval_seconds=INTERVAL, clock=clock, **kw)  # type: ignore[arg-type]


async def run_due(plan: PollSchedule, now: datetime) -> list[str]:
    """Start what is due at `now`, let it finish; the URLs started."""
    tasks = plan.start_due(now)
    await asyncio.gather(*tasks)
    return [task.get_name() for task in tasks]


def offsets(plan: PollSchedule, urls: list[str], now: datetime) -> list[float]:
    return [(plan.due_at(url) - now).total_seconds() for url in urls]  # type: ignore[operator]


async def test_a_server_reads_every_page_at_start(clock: FakeClock) -> None:
    plan = schedule(clock, Polls(), first_run=clock(), spread_seconds=6)
    assert offsets(plan, URLS, clock()) == [0] * len(URLS)
    assert sorted(await run_due(plan, clock())) == sorted(URLS)


async def test_without_a_first_run_each_page_waits_for_its_slot(clock: FakeClock) -> None:
    plan = schedule(clock, Polls())  # the console has just read every page itself
    assert all(INTERVAL / 2 <= o <= INTERVAL * 1.5 for o in offsets(plan, URLS, clock()))
    assert await run_due(plan, clock()) == []


async def test_each_page_is_read_once_per_interval_at_its_own_slot(clock: FakeClock) -> None:
    polls = Polls(clock)
    plan = schedule(clock, polls, first_run=clock(), spread_seconds=0)
    await run_due(plan, clock())
    for _ in range(40):  # 20 intervals, in steps of half an interval
        await run_due(plan, clock.advance(seconds=INTERVAL / 2))
    for url in URLS:
        times = [at for read, at in polls.times if read == url]
        gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(times[1:])}
        # After the first read: exactly one interval apart, at the page's own slot.
        assert gaps == {INTERVAL}, (url, times)
        assert 19 <= len(times) <= 21
        first_gap = (times[1] - times[0]).total_seconds()  # to its slot, read at the next step
        assert INTERVAL / 2 <= first_gap <= INTERVAL * 1.5


def test_slots_spread_thousands_of_pages_evenly_over_the_interval(clock: FakeClock) -> None:
    urls = [f"https://status{i}.example.com/api/v2/summary.json" for i in range(3000)]
    plan = schedule(clock, Polls(), urls)
    phases = [o % INTERVAL for o in offsets(plan, urls, clock())]
    tenths = Counter(int(phase / INTERVAL * 10) for phase in phases)
    # Not one burst: every tenth of the interval holds 10 % of the pages, give or take 2 points.
    assert all(240 <= tenths[tenth] <= 360 for tenth in range(10)), tenths
    # On whole seconds: the pages of one second are read together, sharing the loop's turns.
    assert {plan.due_at(url).timestamp() % 1 for url in urls} == {0.0}  # type: ignore[union-attr]


async def test_a_poll_still_running_at_its_next_slot_is_not_started_twice(
    clock: FakeClock,
) -> None:
    polls = Polls(clock)
    plan = schedule(clock, polls, URLS[:1], first_run=clock())
    polls.hold.clear()  # the page hangs
    [slow] = plan.start_due(clock())
    for _ in range(4):
        clock.now = plan.due_at(URLS[0])  # type: ignore[assignment]
        assert plan.start_due(clock()) == []
    polls.hold.set()
    await slow
    assert polls.read == URLS[:1]
    clock.now = plan.due_at(URLS[0])  # type: ignore[assignment]
    assert [t.get_name() for t in plan.start_due(clock())] == URLS[:1]


async def test_slots_missed_while_the_loop_stalled_become_one_poll(clock: FakeClock) -> None:
    polls = Polls()
    plan = schedule(clock, polls, first_run=clock(), spread_seconds=0)
    await run_due(plan, clock())
    await run_due(plan, clock.advance(seconds=10 * INTERVAL))
    assert Counter(polls.read) == dict.fromkeys(URLS, 2)
    assert all(INTERVAL / 2 <= o <= INTERVAL * 1.5 for o in offsets(plan, URLS, clock()))


async def test_a_follower_polls_nothing_until_elected_then_everything_at_once(
    clock: FakeClock,
) -> None:
    polls = Polls()
    plan = schedule(clock, polls, first_run=clock(), paused=True, spread_seconds=6)
    assert await run_due(plan, clock.advance(seconds=5 * INTERVAL)) == []
    assert plan.seconds_until_next(clock()) is None  # nothing to wake up for
    scheduler = create_scheduler()
    scheduler.start(paused=True)
    try:
        take_over(scheduler, plan, clock())
        assert scheduler.state == 1  # STATE_RUNNING
        assert offsets(plan, URLS, clock()) == pytest.approx([0, 1, 2, 3, 4, 5])
        assert sorted(await run_due(plan, clock.advance(seconds=6))) == sorted(URLS)
        stand_by(scheduler, plan)
        assert scheduler.state == 2  # STATE_PAUSED
        assert await run_due(plan, clock.advance(seconds=2 * INTERVAL)) == []
    finally:
        scheduler.shutdown(wait=False)


async def test_added_pages_are_polled_from_their_slot_and_removed_ones_never(
    clock: FakeClock,
) -> None:
    polls = Polls(clock)
    plan = schedule(clock, polls, URLS[:2], first_run=clock(), spread_seconds=0)
    await run_due(plan, clock())
    added = "https://custom.example/feed.atom"
    plan.add(added)  # whoever added it has just read it
    assert INTERVAL / 2 <= offsets(plan, [added], clock())[0] < INTERVAL * 1.5
    plan.remove(URLS[0])
    assert len(plan) == 2
    assert plan.due_at(URLS[0]) is None
    for _ in range(8):
        await run_due(plan, clock.advance(seconds=INTERVAL / 2))
    assert polls.read.count(URLS[0]) == 1
    assert polls.read.count(URLS[1]) >= 4
    assert polls.read.count(added) >= 3


async def test_run_starts_polls_as_they_fall_due_and_ends_when_closed(clock: FakeClock) -> None:
    polls = Polls()
    plan = schedule(clock, polls, URLS[:1], first_run=clock(), spread_seconds=0)
    running = asyncio.create_task(plan.run())
    try:
        async with asyncio.timeout(10):  # the loop waits on the fake clock's due times
            while polls.read != URLS[:1]:
                await asyncio.sleep(0)
            plan.add(URLS[1])  # wakes the loop; not due yet on the fake clock
            clock.advance(seconds=2 * INTERVAL)
            plan.resume(clock())  # due now: the loop is woken and starts both
            while Counter(polls.read) != {URLS[0]: 2, URLS[1]: 1}:
                await asyncio.sleep(0)
            plan.close()
            await running
    finally:
        running.cancel()


def test_a_non_positive_interval_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="interval"):
        PollSchedule(Polls(), URLS, interval_seconds=0, clock=clock)


def test_the_first_due_time_is_timezone_aware(clock: FakeClock) -> None:
    plan = schedule(clock, Polls(), first_run=clock() + timedelta(seconds=1))
    assert plan.due_at(URLS[0]) == clock() + timedelta(seconds=1)
