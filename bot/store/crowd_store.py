"""Crowd reports and community admin roles. Writers stage changes; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, exists, func, insert, not_
from sqlalchemy import select as core_select
from sqlalchemy.sql.dml import UpdateBase
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.crowd_models import CommunityAdminRoleRow, ReportRow
from bot.store.models import ServiceRow


@dataclass(frozen=True, slots=True)
class StoredReport:
    """One stored report, as the report ledger (bot/store/report_ledger.py) keeps it."""

    id: int
    service_id: str
    reporter_hash: str
    community: str
    """``platform:community_id``, unique across platforms."""
    at: datetime
    counted: bool


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """A staged report, and the service's official state read on the way."""

    report: StoredReport
    service_state: str | None
    """The state stored in ``services`` (None for a service without a row)."""


def _insert_report() -> UpdateBase:
    """INSERT … SELECT that decides ``counted`` in the statement that stores the row. Built
    once: only the parameters change from report to report."""
    table = ReportRow.__table__  # type: ignore[attr-defined]
    already = exists().where(
        table.c.service_id == bindparam("service_id"),
        table.c.reporter_hash == bindparam("reporter_hash"),
        table.c.counted.is_(True),
        table.c.at >= bindparam("since", type_=table.c.at.type),
    )
    names = (
        "service_id",
        "component",
        "what",
        "details",
        "reporter_hash",
        "platform",
        "community_id",
        "at",
    )
    row = core_select(
        *(bindparam(name, type_=table.c[name].type).label(name) for name in names),
        not_(already).label("counted"),
    )
    services = ServiceRow.__table__  # type: ignore[attr-defined]
    state = (
        core_select(services.c.state)
        .where(services.c.id == bindparam("service_id"))
        .scalar_subquery()
    )
    return (
        insert(table)
        .from_select([*names, "counted"], row)
        .returning(table.c.id, table.c.counted, state)
    )


_INSERT_REPORT = _insert_report()


async def add_report(
    *,
    session: AsyncSession,
    service_id: str,
    reporter_hash: str,
    platform: str,
    community_id: str,
    what: str,
    component: str | None,
    details: str | None,
    now: datetime,
    window: timedelta,
    known_repeat: bool = False,
) -> ReportOutcome:
    """Stage a report (only the first per user per service per window counts) and read the
    service's official state (in the same statement). Commit soon after: it holds a lock.

    The database decides whether the report counts, so two reports racing from one user (from
    one process or several) cannot both count. On SQLite the INSERT holds the write lock while
    it looks. On PostgreSQL a transaction lock per (service, reporter) queues the second report
    until the first commits, and the INSERT, a new statement with a new snapshot, then sees it.
    `known_repeat` (a committed counted report of this person in the window is known) skips that
    lock: there is no first report left to race with, and the INSERT still decides.
    """
    if not known_repeat and session.get_bind().dialect.name == "postgresql":
        key = f"report:{service_id}:{reporter_hash}"
        await session.exec(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))
    params = {
        "service_id": service_id,
        "component": component,
        "what": what,
        "details": details,
        "reporter_hash": reporter_hash,
        "platform": platform,
        "community_id": community_id,
        "at": now,
        "since": now - window,
    }
    new_id, counted, service_state = (await session.exec(_INSERT_REPORT, params=params)).one()
    report = StoredReport(
        id=int(new_id),
        service_id=service_id,
        reporter_hash=reporter_hash,
        community=f"{platform}:{community_id}",
        at=now,
        counted=bool(counted),
    )
    return ReportOutcome(report=report, service_state=service_state)


async def recent_reports(
    *, session: AsyncSession, service_ids: Sequence[str], since: datetime
) -> list[StoredReport]:
    """Every report of these services since a moment, oldest first (primes the ledger)."""
    if not service_ids:
        return []
    table = ReportRow.__table__  # type: ignore[attr-defined]
    names = ("id", "service_id", "reporter_hash", "platform", "community_id", "at", "counted")
    query = (  # plain rows, not ORM objects: this may read tens of thousands
        core_select(*(table.c[name] for name in names))
        .where(table.c.service_id.in_(service_ids), table.c.at >= since)
        .order_by(table.c.at, table.c.id)
    )
    rows = (await (await session.connection()).execute(query)).all()
    return [
        StoredReport(
            id=id_,
            service_id=service,
            reporter_hash=who,
            community=f"{platform}:{community}",
            at=at,
            counted=bool(counted),
        )
        for id_, service, who, platform, community, at, counted in rows
    ]


async def counted_between(
    *, session: AsyncSession, service_id: str, since: datetime, until: datetime
) -> int:
    """How many counted reports a service had in a span."""
    query = (
        select(func.count())
        .select_from(ReportRow)
        .where(
            ReportRow.service_id == service_id,
            col(ReportRow.counted).is_(True),
            col(ReportRow.at) >= since,
            col(ReportRow.at) < until,
        )
    )
    return int((await session.exec(query)).one())


async def counted_reports(
    *, session: AsyncSession, service_id: str, since: datetime
) -> list[tuple[datetime, str, str]]:
    """(at, reporter hash, community key) of counted reports since a moment, oldest first."""
    rows = (
        await session.exec(
            select(
                ReportRow.at, ReportRow.reporter_hash, ReportRow.platform, ReportRow.community_id
            )
            .where(
                ReportRow.service_id == service_id,
                col(ReportRow.counted).is_(True),
                col(ReportRow.at) >= since,
            )
            .order_by(col(ReportRow.at))
        )
    ).all()
    return [(at, who, f"{platform}:{community}") for at, who, platform, community in rows]


async def reports_after(
    *, session: AsyncSession, service_id: str, after_id: int, since: datetime
) -> list[tuple[int, datetime, str, str]]:
    """(id, at, reporter hash, community key) of counted reports newer than an id, oldest first."""
    rows = (
        await session.exec(
            select(ReportRow)
            .where(
                ReportRow.service_id == service_id,
                col(ReportRow.counted).is_(True),
                col(ReportRow.id) > after_id,
                col(ReportRow.at) >= since,
            )
            .order_by(col(ReportRow.id))
        )
    ).all()
    return [(r.id or 0, r.at, r.reporter_hash, f"{r.platform}:{r.community_id}") for r in rows]


async def hourly_counts(
    *, session: AsyncSession, service_id: str, since: datetime, until: datetime
) -> list[tuple[datetime, int]]:
    """Counted reports per hour over a span, every hour listed (zeros too), oldest first."""
    reports = await counted_reports(session=session, service_id=service_id, since=since)
    start = since.replace(minute=0, second=0, microsecond=0)
    counts: dict[datetime, int] = {}
    for at, _, _ in reports:
        hour = at.replace(minute=0, second=0, microsecond=0)
        counts[hour] = counts.get(hour, 0) + 1
    hours = []
    hour = start
    while hour + timedelta(hours=1) <= until:
        hours.append((hour, counts.get(hour, 0)))
        hour += timedelta(hours=1)
    return hours


async def admin_roles(*, session: AsyncSession, platform: str, community_id: str) -> list[str]:
    """Roles whose members count as admins in one community."""
    rows = await session.exec(
        select(CommunityAdminRoleRow.role_id).where(
            CommunityAdminRoleRow.platform == platform,
            CommunityAdminRoleRow.community_id == community_id,
        )
    )
    return list(rows.all())


async def set_admin_role(
    *, session: AsyncSession, platform: str, community_id: str, role_id: str, present: bool
) -> bool:
    """Add or remove an admin role; True when something changed."""
    row = await session.get(CommunityAdminRoleRow, (platform, community_id, role_id))
    if present and row is None:
        session.add(
            CommunityAdminRoleRow(platform=platform, community_id=community_id, role_id=role_id)
        )
        return True
    if not present and row is not None:
        await session.delete(row)
        return True
    return False


def any_role(roles: Sequence[str], allowed: Sequence[str]) -> bool:
    """Whether one of the roles is an allowed one."""
    return bool(set(roles) & set(allowed))
