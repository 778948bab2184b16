"""When each status source is polled: once per interval, each at a slot of its own, from one task.

Why not a scheduler job per source: at thousands of pages, APScheduler's bookkeeping for one run
(look-up, next fire time, events, executor) costs about 77 µs of CPU, more than a quarter of the
three conditional GETs it triggers (bench/poll_efficiency.py). Here a heap of due times costs a
few µs per poll.

Slots: a source's slot is ``hash(url) mod interval`` past the epoch, rounded down to a whole
``slot_seconds`` (1 s), so thousands of pages spread evenly over the interval, not in one burst,
and a new leader keeps the slots of the old one. The pages of one second are read together: reads
that overlap share the event loop's turns, and 3,000 pages read one at a time cost 1.7× the CPU
of the same reads in bursts (bench/poll_efficiency.py, 2026-12-07).

A server reads every page at start; a new leader pulls every page forward, spread over
``spread_seconds``. After any poll, a source's next run is its first slot at least half an
interval later. A poll still running at its next slot is not started twice: the slot is skipped,
as a missed slot after a stalled loop is, so polls never pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import zlib
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

Poll = Callable[[str], Coroutine[Any, Any, None]]


def slot_phase(url: str, interval_seconds: float, slot_seconds: float) -> float:
    """Where in each interval ``url`` is read, in seconds: a hash of the URL, on the slot grid."""
    phase = interval_seconds * zlib.crc32(url.encode()) / 2**32
    return phase - phase % slot_seconds if slot_seconds > 0 else phase


class PollSchedule:
    """Starts each source's poll at its due time; paused (a follower process) starts none."""

    def __init__(
        self,
        poll: Poll,
        urls: Iterable[str],
        *,
        interval_seconds: float,
        clock: Callable[[], datetime],
        first_run: datetime | None = None,
        spread_seconds: float = 5.0,
        slot_seconds: float = 1.0,
        paused: bool = False,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError("interval_seconds must be positive")
        self._poll, self._clock = poll, clock
        self._interval, self._spread = interval_seconds, max(0.0, spread_seconds)
        self._slot = max(0.0, slot_seconds)
        self._due: dict[str, float] = {}  # url -> due time (POSIX seconds); the heap may lag
        self._heap: list[tuple[float, str]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._paused = paused
        self._wake = asyncio.Event()
        self._closed = False
        start = clock().timestamp()
        urls = list(urls)
        if first_run is None:
            for url in urls:
                self._set_due(url, self._next_slot(url, start))
        else:  # all due then (the poller bounds how many run at once), as a server starts
            for url in urls:
                self._set_due(url, first_run.timestamp())

    def __len__(self) -> int:
        return len(self._due)

    def due_at(self, url: str) -> datetime | None:
        """When ``url`` is polled next (None: not scheduled)."""
        due = self._due.get(url)
        return None if due is None else datetime.fromtimestamp(due, tz=self._clock().tzinfo)

    def add(self, url: str) -> None:
        """Poll ``url`` from its next slot on (whoever adds it has just read it)."""
        if url not in self._due:
            self._set_due(url, self._next_slot(url, self._clock().timestamp()))
            self._wake.set()

    def remove(self, url: str) -> None:
        """Stop polling ``url``; a poll of it already running ends on its own."""
        self._due.pop(url, None)  # its heap entries are skipped when they come up

    def pause(self) -> None:
        """Start no more polls (this process stopped leading); those running finish."""
        self._paused = True

    def resume(self, now: datetime) -> None:
        """Start polls again, every source pulled forward over ``spread_seconds`` from ``now``:
        the previous leader may have stopped polling a while ago."""
        self._pull_forward(list(self._due), now.timestamp())
        self._paused = False
        self._wake.set()

    def close(self) -> None:
        """End `run` (shutdown); polls already started are the poller's to drain."""
        self._closed = True
        self._wake.set()

    def start_due(self, now: datetime) -> list[asyncio.Task[None]]:
        """Start the polls due at ``now`` (none while paused); returns their tasks."""
        if self._paused:
            return []
        at = now.timestamp()
        started = []
        heap, due = self._heap, self._due
        while heap and heap[0][0] <= at:
            when, url = heapq.heappop(heap)
            if due.get(url) != when:
                continue  # removed, or rescheduled since this entry was pushed
            self._set_due(url, self._next_slot(url, at))
            if url in self._running:
                log.debug("poll of %s still running at its next slot: slot skipped", url)
                continue
            task = asyncio.create_task(self._poll(url), name=url)
            self._running[url] = task
            task.add_done_callback(self._ended)
            started.append(task)
        return started

    def _ended(self, task: asyncio.Task[None]) -> None:
        # The task is named by its url: no closure per poll to remember it.
        if self._running.get(task.get_name()) is task:
            del self._running[task.get_name()]

    def seconds_until_next(self, now: datetime) -> float | None:
        """How long until the next poll is due (None: nothing scheduled, or paused)."""
        if self._paused:
            return None
        heap, due = self._heap, self._due
        while heap and due.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale entries only: keep the head meaningful
        if not heap:
            return None
        return max(0.0, heap[0][0] - now.timestamp())

    async def run(self) -> None:
        """Start polls as they fall due until `close`; woken early by add, resume and close."""
        while not self._closed:
            now = self._clock()
            self.start_due(now)
            delay = self.seconds_until_next(now)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _pull_forward(self, urls: list[str], start: float) -> None:
        for index, url in enumerate(urls):
            self._set_due(url, start + self._spread * index / max(1, len(urls)))

    def _set_due(self, url: str, when: float) -> None:
        self._due[url] = when
        heapq.heappush(self._heap, (when, url))

    def _next_slot(self, url: str, ran: float) -> float:
        """The first slot of ``url`` at least half an interval after ``ran``."""
        phase = slot_phase(url, self._interval, self._slot)
        earliest = ran + self._interval / 2
        return phase + math.ceil((earliest - phase) / self._interval) * self._interval
