"""Tell a database that is away from a bug, and say so once per outage, not once per attempt.

While PostgreSQL restarts, or SQLite's disk is full, every loop that touches the database
(polling, crowd watch, reminders, the outbox, custom services) fails on every round. That is one
known condition: it gets one WARNING line per loop when it starts and one when it ends, without a
traceback. Anything else is a bug and keeps its traceback, so it is not buried under the outage.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from bot.core.timeutil import Clock, format_duration
from bot.store.pg_driver import INTERFACE_ERRORS, SERVER_AWAY_ERRORS

# SQLite's primary result codes for a database that cannot be used right now, rather than a
# query that is wrong (SQLITE_ERROR: "no such table" and friends stay bugs).
_SQLITE_AWAY = {
    sqlite3.SQLITE_BUSY,  # "database is locked": another writer held it past the busy timeout
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,  # "database or disk is full"
    sqlite3.SQLITE_CANTOPEN,
}
_AWAY = (
    *SERVER_AWAY_ERRORS,
    PoolTimeoutError,  # no pooled connection came free in time
    TimeoutError,  # connecting took too long
    ConnectionError,  # refused, reset, aborted, broken pipe
)
_NETWORK_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EPIPE,
    errno.ETIMEDOUT,
    errno.ENETUNREACH,
    errno.ENETDOWN,
    errno.EHOSTUNREACH,
    errno.EHOSTDOWN,
}
_REASON_CHARS = 200


def unavailability_cause(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that says the database is away; None means a bug.

    The chain is followed through SQLAlchemy's ``orig`` and explicit causes (``raise … from``),
    never through ``__context__``: a bug raised while handling an outage keeps its traceback.
    """
    invalidated: BaseException | None = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _says_away(current):
            return current
        if (
            invalidated is None
            and isinstance(current, DBAPIError)
            and current.connection_invalidated
        ):
            invalidated = current
        origin = current.orig if isinstance(current, StatementError) else None
        current = origin if isinstance(origin, BaseException) else current.__cause__
    # SQLAlchemy found the connection dead even though no link of the chain names a known cause.
    return invalidated


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached or used right now (not a bug)."""
    return unavailability_cause(exc) is not None


def _says_away(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _SQLITE_AWAY
    if isinstance(exc, _AWAY):
        return True
    if isinstance(exc, INTERFACE_ERRORS):
        # Using a connection the server already dropped; other interface errors are misuse.
        return "connection is closed" in str(exc) or "connection was closed" in str(exc)
    if isinstance(exc, OSError):
        # asyncio joins the failures of every address of a host into one errno-less OSError.
        return exc.errno in _NETWORK_ERRNOS or str(exc).startswith("Multiple exceptions:")
    return False


def describe(exc: BaseException) -> str:
    """A one-line reason for a log: the telling cause's type and the first line of its text."""
    cause = unavailability_cause(exc) or exc
    text = str(cause).strip().splitlines()
    reason = f"{type(cause).__name__}: {text[0]}" if text else type(cause).__name__
    return reason if len(reason) <= _REASON_CHARS else reason[: _REASON_CHARS - 1] + "…"


class DatabaseOutageLog:
    """One loop's view of database outages in the log: a line when one starts and when it ends.

    ``work`` names what stops meanwhile, as an operator would say it ("polling", "reminders").
    """

    def __init__(self, logger: logging.Logger, work: str, *, clock: Clock) -> None:
        self._log, self._work, self._clock = logger, work, clock
        self._since: datetime | None = None
        self._failures = 0

    @property
    def down(self) -> bool:
        """Whether this loop last found the database away."""
        return self._since is not None

    def failed(self, exc: BaseException, message: str, *args: object) -> None:
        """Log a failure: a bug with its traceback; the database away once per outage."""
        if not is_database_unavailable(exc):
            self._log.error(message, *args, exc_info=exc)
            return
        self._failures += 1
        if self._since is None:
            self._since = self._clock()
            self._log.warning(
                "database unavailable: %s paused until it answers (%s)", self._work, describe(exc)
            )

    def answered(self) -> None:
        """The database served this loop again: close the outage, if any, with one line."""
        if self._since is None:
            return
        lasted = format_duration(self._clock() - self._since)
        # WARNING like the line that opened it: whoever filters at WARNING sees both ends.
        self._log.warning(
            "database back: %s resumed after %s (%d failed attempts meanwhile)",
            self._work,
            lasted,
            self._failures,
        )
        self._since, self._failures = None, 0

    @contextlib.contextmanager
    def watching(self, message: str, *args: object) -> Iterator[None]:
        """Run one round of a loop: success closes an outage, any failure goes to `failed`.

        The failure is swallowed (a loop goes on); cancellation is not an ``Exception`` and
        passes through."""
        try:
            yield
        except Exception as exc:
            self.failed(exc, message, *args)
        else:
            self.answered()
