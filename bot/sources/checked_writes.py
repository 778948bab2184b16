"""Group commit for "last checked": unchanged reads hand their time over and go on.

At thousands of pages every 30 s, an unchanged page still writes its "last checked" time once a
minute; a transaction (and, on SQLite, a commit to disk) for each would cost more CPU than all
the reads. So an unchanged read only adds its time to the pending batch and its poll ends; one
task writes the batches, one transaction each. The poll does not wait for that write: waiting
(a future per poll, woken when its batch commits) cost about 20 µs of CPU per poll that writes,
a twentieth of the three conditional GETs of its read (2026-12-07). What a failed batch held
is handed to `on_failed`: the poller logs it and writes those pages again at their next read, so
a database outage loses no more than the times it lasted.

A batch waits, before it is written, for the polls still reading (told by the poller) while it
is smaller than `batch_size`: those polls may yet join it. A round of thousands of pages then
shares a few transactions instead of hundreds of small ones, each costing far more CPU than its
rows. A lone poll, or the last of a round, is written at once; polls that overlap without end
(never all idle) hold a batch for at most `max_gather_seconds`.

The app reads each page at a slot of its own (bot/runtime/poll_schedule.py), so its polls rarely
overlap: each would be "lone" and pay a transaction (about 1 ms of CPU, 2× the three GETs of the
read). So while writes come often, a batch is not written sooner than `min_gather_seconds` (the
app: 5 s) after the previous one, and gathers meanwhile; a write after a quiet spell (a lone
poll, a test) still goes at once, and so does everything pending once `flush` or `hurry` is
called (shutdown, a `check` run): nobody waits out a gathering pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store import service_state_store

CheckedTouch = tuple[str, Sequence[str], datetime]
"""An unchanged, healthy read: (source URL, ids of the services it feeds, when)."""
BatchWritten = Callable[[Sequence[CheckedTouch]], None]
BatchFailed = Callable[[Sequence[CheckedTouch], Exception], None]


def _ignore_written(touches: Sequence[CheckedTouch]) -> None:
    return None


class CheckedWriter:
    """Writes "last checked" for unchanged, healthy reads; one transaction per batch."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        on_failed: BatchFailed,
        on_written: BatchWritten = _ignore_written,
        polls_in_flight: Callable[[], int] = lambda: 0,
        batch_size: int = 1000,
        min_gather_seconds: float = 0.0,
        max_gather_seconds: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._on_failed, self._on_written = on_failed, on_written
        self._polls_in_flight, self._batch_size = polls_in_flight, batch_size
        self._min_gather = min(min_gather_seconds, max_gather_seconds)
        self._max_gather = max_gather_seconds
        self._ready = asyncio.Event()  # set when the pending batch may be gathered
        self._hurried = asyncio.Event()  # set while what is pending must go without pausing
        self._pending: list[CheckedTouch] = []
        self._writer: asyncio.Task[None] | None = None
        self._last_written: float | None = None  # the event loop's time of the last batch

    @property
    def writing(self) -> asyncio.Task[None] | None:
        """The task writing batches, while there is one (shutdown waits for it)."""
        return self._writer

    def add(self, url: str, service_ids: Sequence[str], now: datetime) -> None:
        """Have `url` (and its services) written as read unchanged at `now`, in the next batch.
        Call it from the poll that read it, before the poll ends."""
        self._pending.append((url, service_ids, now))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_batches())
        self._stir()

    def hurry(self) -> None:
        """Have what is pending written now, without gathering more; the writer keeps up this
        pace until it has nothing left to write (shutdown calls it after the last poll)."""
        if self._writer is not None:
            self._hurried.set()
            self._ready.set()

    async def flush(self) -> None:
        """Return once everything added so far is written, or handed to `on_failed`; written
        now, not after a gathering pause."""
        while self._writer is not None:
            self.hurry()
            # Shielded: a caller cancelled (a command timing out) must not cancel the writes.
            await asyncio.shield(self._writer)

    async def finish(self, *, grace_seconds: float) -> None:
        """Write what is pending now; what is not written within `grace_seconds` is dropped
        (the writer cancelled: shutdown's grace is over) and written by the next process."""
        if (writer := self._writer) is None:
            return
        self.hurry()
        done, _ = await asyncio.wait({writer}, timeout=grace_seconds)
        if not done:
            writer.cancel()
            await asyncio.wait({writer}, timeout=5)

    def poll_ended(self) -> None:
        """A poll finished (its time added, or nothing to add): one fewer that may join."""
        if self._pending:  # else no batch is gathering: most polls of a round end here
            self._stir()

    def _gathered(self) -> bool:
        """Whether the pending batch is full, or no poll still reading may join it."""
        return (
            len(self._pending) >= self._batch_size
            or self._polls_in_flight() == 0
            or self._hurried.is_set()
        )

    def _stir(self) -> None:
        # Woken once per batch, not once per poll: thousands of polls end in a round.
        if self._gathered():
            self._ready.set()

    async def _gather(self) -> None:
        """Returns when the pending batch is gathered, or has waited long enough."""
        try:
            async with asyncio.timeout(self._max_gather):
                if self._min_gather > 0 and self._last_written is not None:
                    wait = self._last_written + self._min_gather - asyncio.get_running_loop().time()
                    if wait > 0:
                        with contextlib.suppress(TimeoutError):  # paused enough
                            async with asyncio.timeout(wait):
                                await self._hurried.wait()  # or told not to pause
                while not self._gathered():
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            pass

    async def _write_batches(self) -> None:
        try:
            while self._pending:
                await self._gather()
                touches, self._pending = self._pending, []
                self._last_written = asyncio.get_running_loop().time()
                try:
                    async with self._sessions() as session:
                        await service_state_store.touch_checked(
                            session=session,
                            checked=((s, at) for _url, services, at in touches for s in services),
                        )
                        await session.commit()
                except Exception as exc:
                    self._on_failed(touches, exc)
                else:
                    self._on_written(touches)
        finally:
            # Cancelled (shutdown past its grace): what was pending is not written, and the
            # next process writes those times at its first reads.
            self._pending, self._writer = [], None
            self._hurried.clear()
