"""Which process polls: one leader per database.

PostgreSQL: the leader holds a session-level advisory lock on a connection of its own. The lock
lives exactly as long as that connection, so when the leader dies (even by SIGKILL) PostgreSQL
frees it and the next follower to try takes it. A leader checks its connection every round and
steps down when it cannot be sure it still holds the lock.

SQLite: one process only. An OS file lock next to the database file, held for the life of the
process, makes a second process refuse to start instead of corrupting detection state.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from bot.errors import ConfigError
from bot.store.pg_connection import Connect
from bot.store.pg_driver import CONNECTION_ERRORS

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 0x0B07_0001
"""The advisory lock key the leader holds (any constant no other application uses)."""

_LOST: tuple[type[BaseException], ...] = (OSError, TimeoutError, *CONNECTION_ERRORS)
_LOST_OR_CANCELLED: tuple[type[BaseException], ...] = (*_LOST, asyncio.CancelledError)


class AlreadyRunningError(ConfigError):
    """Another process already runs against this SQLite database."""


class LeaderElector:
    """Holds or waits for the leader lock; tells the app when it gains or loses leadership."""

    def __init__(
        self,
        connect: Connect,
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[], None],
        key: int = LEADER_LOCK_KEY,
        retry_seconds: float = 3.0,
        check_timeout: float = 5.0,
    ) -> None:
        self._connect = connect
        self._on_elected = on_elected
        self._on_deposed = on_deposed
        self._key = key
        self._retry = retry_seconds
        self._timeout = check_timeout
        self._connection: Any = None
        self._leader = False
        self._unreachable_logged = False
        self._failure_logged = False

    async def step(self) -> bool:
        """One round: connect if needed, confirm or try for the lock; True while holding it."""
        if self._connection is not None and self._connection.is_closed():
            await self._lose("its database connection closed")
        if self._connection is None:
            try:
                self._connection = await asyncio.wait_for(self._connect(), self._timeout)
            except _LOST as exc:
                if not self._unreachable_logged:
                    log.warning("leader election: database unreachable (%s); retrying", exc)
                    self._unreachable_logged = True
                return False
            self._unreachable_logged = False
        try:
            if self._leader:
                # A session lock lives as long as its connection: alive means still ours.
                await asyncio.wait_for(self._connection.fetchval("SELECT 1"), self._timeout)
            else:
                query = "SELECT pg_try_advisory_lock($1)"
                won = await asyncio.wait_for(
                    self._connection.fetchval(query, self._key), self._timeout
                )
                if won:
                    self._leader = True
                    log.info("leader: this process now runs polling and scheduled jobs")
                    self._on_elected()
        except _LOST as exc:
            await self._lose(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        return self._leader

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds every ``retry_seconds`` until ``stop``; then resigns, freeing the lock."""
        try:
            while not stop.is_set():
                await self._round()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._retry)
        finally:
            await self.resign()

    async def _round(self) -> None:
        """A step that cannot end the election: a bug in it (or in ``on_elected``) is logged
        and this process stands down, freeing the lock, rather than holding it without
        polling or never trying again."""
        try:
            await self.step()
        except Exception:
            # The traceback once; a bug that fails every round would flood the log otherwise.
            if not self._failure_logged:
                log.exception("leader election: a round failed unexpectedly; standing down")
            self._failure_logged = True
            await self._lose("a round failed unexpectedly")
        else:
            self._failure_logged = False

    async def resign(self) -> None:
        """Step down and free the lock now, so a follower need not wait for a timeout."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await asyncio.wait_for(connection.close(), self._timeout)
            except _LOST_OR_CANCELLED:
                connection.terminate()
        if self._leader:
            self._leader = False
            log.info("leader: stepped down")
            self._on_deposed()

    async def _lose(self, why: str) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            # No polite close: on a dead socket it would hang; dropping it frees the lock.
            connection.terminate()
        if self._leader:
            self._leader = False
            log.warning("leader: lost the lock (%s); polling stops in this process", why)
            self._on_deposed()


@contextlib.contextmanager
def single_process(database_url: str) -> Iterator[None]:
    """Hold ``<database>.lock`` while the body runs; raise AlreadyRunningError if another
    process holds it. Does nothing for PostgreSQL or an in-memory SQLite database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    database = Path(url.database).expanduser().resolve()
    path = database.with_name(database.name + ".lock")
    # Private like the database beside it (bot/store/file_modes.py), which is created next.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            # The kernel frees it when the process ends, however it ends: no stale lock files.
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            raise AlreadyRunningError(
                f"another outagebot{f' (pid {holder})' if holder.isdigit() else ''} is already "
                f"running with {database}. Stop it first; to run several processes, use "
                "PostgreSQL (DATABASE_URL=postgresql+asyncpg://…)."
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)
