"""Group commit for "last checked": unchanged reads that arrive together share one transaction.

At thousands of pages every 30 s, an unchanged page still writes its "last checked" time once a
minute; a transaction (and, on SQLite, a commit to disk) for each would cost more CPU than all
the reads. Reads that want this write while another such write is in flight wait for it to end,
then go in the next one together. Each caller still returns only once its own write is committed,
and gets the error if that write failed, exactly as with a transaction of its own.

A batch also waits, before it is written, for the polls still reading (told by the poller) while
it is smaller than `batch_size`: those polls may yet join it. A round of thousands of pages then
shares a few transactions instead of hundreds of small ones, each costing far more CPU than its
rows. A lone poll, or the last of a round, is written at once; polls that overlap without end
(never all idle) hold a batch for at most `max_gather_seconds`.

The app reads each page at a slot of its own (bot/runtime/poll_schedule.py), so its polls rarely
overlap: each would be "lone" and pay a transaction (about 1 ms of CPU, 2× the three GETs of the
read). So while writes come often, a batch is not written sooner than `min_gather_seconds` (the
app: 2 s) after the previous one, and gathers meanwhile; a write after a quiet spell (a lone
poll, a test) still goes at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store import source_store


class CheckedWriter:
    """Writes "last checked" for unchanged, healthy reads; one transaction per batch."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        polls_in_flight: Callable[[], int] = lambda: 0,
        batch_size: int = 1000,
        min_gather_seconds: float = 0.0,
        max_gather_seconds: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._polls_in_flight, self._batch_size = polls_in_flight, batch_size
        self._min_gather = min(min_gather_seconds, max_gather_seconds)
        self._max_gather = max_gather_seconds
        self._waiting = 0  # touch() calls not returned yet: polls in flight that read already
        self._ready = asyncio.Event()  # set when the pending batch may be gathered
        self._pending: list[source_store.CheckedTouch] = []
        self._next: asyncio.Future[None] | None = None  # done when the pending batch is written
        self._writer: asyncio.Task[None] | None = None
        self._last_written: float | None = None  # the event loop's time of the last batch

    @property
    def writing(self) -> asyncio.Task[None] | None:
        """The task writing batches, while there is one (shutdown waits for it)."""
        return self._writer

    async def touch(self, url: str, service_ids: Sequence[str], now: datetime) -> None:
        """Write that `url` (and its services) was read unchanged at `now`; returns once
        committed, raises what the write raised."""
        self._pending.append((url, service_ids, now))
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        written = self._next
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_batches())
        self._waiting += 1
        self._stir()
        try:
            # Shielded: one caller cancelled (shutdown) must not cancel the others' write.
            await asyncio.shield(written)
        finally:
            self._waiting -= 1

    def poll_ended(self) -> None:
        """A poll finished (written, or nothing to write): one fewer that may join a batch."""
        self._stir()

    def _gathered(self) -> bool:
        """Whether the pending batch is full, or no poll still reading may join it."""
        full = len(self._pending) >= self._batch_size
        return full or self._polls_in_flight() <= self._waiting

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
                        await asyncio.sleep(wait)
                while not self._gathered():
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            pass

    async def _write_batches(self) -> None:
        written: asyncio.Future[None] | None = None
        try:
            while self._pending:
                await self._gather()
                touches, written = self._pending, self._next
                self._pending, self._next = [], None
                self._last_written = asyncio.get_running_loop().time()
                try:
                    async with self._sessions() as session:
                        await source_store.touch_checked(session=session, touches=touches)
                        await session.commit()
                except Exception as exc:
                    _settle(written, exc)
                else:
                    _settle(written, None)
        except BaseException:
            # Cancelled while writing (the loop is closing): nobody may wait forever.
            for future in (written, self._next):
                if future is not None and not future.done():
                    future.cancel()
            self._pending, self._next = [], None
            raise
        finally:
            self._writer = None


def _settle(future: asyncio.Future[None] | None, error: Exception | None) -> None:
    if future is None or future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        # Retrieved by every waiter that is left; none left (all cancelled) is no reason to warn.
        future.add_done_callback(lambda done: done.exception())
