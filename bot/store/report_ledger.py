"""The last hour of /reports in memory, so a report is answered without recounting rows.

The database stays the source of truth: whether a report counts is decided there, by the
statement that stores it (`crowd_store.add_report`). This ledger is a per-process cache of the
reports of the last hour. It is primed from the database on first use and primed again every
minute, which brings in what other processes stored (several may share PostgreSQL) and forgets
what was erased. Each report this process stores is added at once. It answers the flood limits
and the "you and N others in the last 30 min" of the reply; with several processes those may lag
the database by up to a minute.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store import crowd_store
from bot.store.crowd_store import StoredReport

_Entry = tuple[datetime, int, str, str]  # at, id, reporter, community: (at, id) is unique


@dataclass(frozen=True, slots=True)
class Spread:
    """Who reported a service within the window."""

    reporters: int
    """Distinct counted reporters, the caller included when counted in the window."""
    communities: int
    caller_included: bool


class _Times:
    """Report times per key, sorted, to count a key's reports since any moment."""

    def __init__(self) -> None:
        self._times: dict[str, list[tuple[datetime, int]]] = {}

    def add(self, key: str, at: datetime, report_id: int) -> None:
        insort(self._times.setdefault(key, []), (at, report_id))

    def since(self, key: str, moment: datetime) -> int:
        times = self._times.get(key)
        return len(times) - bisect_left(times, (moment, -1)) if times else 0


class _Window:
    """Counted reports of one service, sorted by time, with running counts of the suffix that
    lies inside the window. The suffix's start moves either way, so the counts stay exact
    however the asked moment jumps, at the cost of the entries it passes."""

    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self._head = 0
        self._since: datetime | None = None
        self._reporters: Counter[str] = Counter()
        self._communities: Counter[str] = Counter()

    def add(self, entry: _Entry) -> None:
        insort(self._entries, entry)
        if self._since is None or entry[0] >= self._since:
            self._count(entry, 1)
        else:
            self._head += 1  # it went in before the head

    def spread(self, since: datetime, reporter: str) -> Spread:
        entries = self._entries
        while self._head < len(entries) and entries[self._head][0] < since:
            self._count(entries[self._head], -1)
            self._head += 1
        while self._head > 0 and entries[self._head - 1][0] >= since:
            self._head -= 1
            self._count(entries[self._head], 1)
        self._since = since
        return Spread(len(self._reporters), len(self._communities), reporter in self._reporters)

    def _count(self, entry: _Entry, step: int) -> None:
        for counter, key in ((self._reporters, entry[2]), (self._communities, entry[3])):
            counter[key] += step
            if counter[key] <= 0:
                del counter[key]


class _State:
    def __init__(self) -> None:
        self.by_user = _Times()
        self.by_community = _Times()
        self.windows: dict[str, _Window] = {}

    def add(self, report: StoredReport) -> None:
        self.by_user.add(report.reporter_hash, report.at, report.id)
        self.by_community.add(report.community, report.at, report.id)
        if report.counted:
            window = self.windows.setdefault(report.service_id, _Window())
            window.add((report.at, report.id, report.reporter_hash, report.community))


class ReportLedger:
    """Recent reports of every service, for the flood limits and the /report reply."""

    def __init__(
        self,
        *,
        service_ids: Callable[[], Iterable[str]],
        window: timedelta = timedelta(minutes=30),
        flood_span: timedelta = timedelta(hours=1),
        reprime_every: timedelta = timedelta(minutes=1),
        reprime_every_sqlite: timedelta = timedelta(minutes=10),
    ) -> None:
        self._service_ids = service_ids
        self._window = window
        self._span = max(flood_span, window)
        self._reprime_every_sqlite = reprime_every_sqlite
        self._state = _State()
        self._every = reprime_every
        self._sqlite: bool | None = None
        self._primed_at: datetime | None = None
        self._priming = asyncio.Lock()
        self._while_priming: list[StoredReport] | None = None
        self.salt_lock = asyncio.Lock()
        """Taken while the user-hash salt is first read, so that one report creates it."""
        self.sqlite_writes = asyncio.Lock()
        """Held by a report for its whole transaction on SQLite: one at a time, in order."""

    async def ready(self, session: AsyncSession, now: datetime) -> None:
        """Prime from the database on first use, and again once `reprime_every` has passed.

        SQLite serves one process, so nothing new can appear there: priming again only forgets
        old entries, and does it less often."""
        if session.get_bind().dialect.name == "sqlite":
            self._every = self._reprime_every_sqlite
        if not self._due(now):
            return
        if self._primed_at is not None and self._priming.locked():
            return  # another report is priming again: the current picture serves meanwhile
        async with self._priming:
            if not self._due(now):
                return
            self._while_priming = []
            try:
                rows = await crowd_store.recent_reports(
                    session=session, service_ids=list(self._service_ids()), since=now - self._span
                )
                state, loaded = _State(), set()
                for row in rows:
                    state.add(row)
                    loaded.add(row.id)
                # reports this process stored while the query ran may be missing from its answer
                for row in self._while_priming:
                    if row.id not in loaded:
                        state.add(row)
                self._state, self._primed_at = state, now
            finally:
                self._while_priming = None

    def is_sqlite(self, sessions: async_sessionmaker[AsyncSession]) -> bool:
        """Whether the sessions go to SQLite (asked once; the answer never changes)."""
        if self._sqlite is None:
            bind = sessions.kw.get("bind")
            self._sqlite = bind is not None and bind.dialect.name == "sqlite"
        return self._sqlite

    def _due(self, now: datetime) -> bool:
        primed = self._primed_at
        return primed is None or not timedelta(0) <= now - primed < self._every

    def record(self, report: StoredReport) -> None:
        """Add a report this process has just committed."""
        self._state.add(report)
        if self._while_priming is not None:
            self._while_priming.append(report)

    def sent_by_user(self, reporter_hash: str, since: datetime) -> int:
        """Reports (any service, repeats too) from one person since a moment."""
        return self._state.by_user.since(reporter_hash, since)

    def sent_by_community(self, community: str, since: datetime) -> int:
        """Reports (any service, repeats too) from one community since a moment."""
        return self._state.by_community.since(community, since)

    def spread(self, service_id: str, reporter_hash: str, now: datetime) -> Spread:
        """Distinct reporters and communities of a service within the window ending now."""
        window = self._state.windows.get(service_id)
        if window is None:
            return Spread(0, 0, caller_included=False)
        return window.spread(now - self._window, reporter_hash)
