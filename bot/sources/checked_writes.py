"""Group commit for "last checked": unchanged reads that arrive together share one transaction.

At thousands of pages every 30 s, an unchanged page still writes its "last checked" time once a
minute; a transaction (and, on SQLite, a commit to disk) for each would cost more CPU than all
the reads. Reads that want this write while another such write is in flight wait for it to end,
then go in the next one together. Each caller still returns only once its own write is committed,
and gets the error if that write failed, exactly as with a transaction of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store import repository


class CheckedWriter:
    """Writes "last checked" for unchanged, healthy reads; one transaction per batch."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._pending: list[repository.CheckedTouch] = []
        self._next: asyncio.Future[None] | None = None  # done when the pending batch is written
        self._writer: asyncio.Task[None] | None = None

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
        # Shielded: one caller cancelled (shutdown) must not cancel the others' write.
        await asyncio.shield(written)

    async def _write_batches(self) -> None:
        written: asyncio.Future[None] | None = None
        try:
            while self._pending:
                touches, written = self._pending, self._next
                self._pending, self._next = [], None
                try:
                    async with self._sessions() as session:
                        await repository.touch_checked(session=session, touches=touches)
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
