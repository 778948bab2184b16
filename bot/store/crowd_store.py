"""Crowd reports and community admin roles. Writers stage changes; the caller commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.crowd_models import CommunityAdminRoleRow, ReportRow


@dataclass(frozen=True, slots=True)
class ReportOutcome:
    """What happened to a report, and what others see right now."""

    counted: bool
    reporters: int
    """Distinct reporters of this service in the window, the caller included."""
    communities: int


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
) -> ReportOutcome:
    """Stage a report; only the first per user per service per window counts.

    Every read happens before the one insert, so on SQLite the write lock is held only for the
    caller's commit, not across these queries.
    """
    since = now - window
    earlier = (
        await session.exec(
            select(ReportRow.id).where(
                ReportRow.service_id == service_id,
                ReportRow.reporter_hash == reporter_hash,
                col(ReportRow.counted).is_(True),
                col(ReportRow.at) >= since,
            )
        )
    ).first()
    counted = earlier is None
    reporters, communities = await spread(session=session, service_id=service_id, since=since)
    if counted:
        reporters += 1  # this report's author, not in the database yet
        new_community = not (
            await session.exec(
                select(ReportRow.id).where(
                    ReportRow.service_id == service_id,
                    ReportRow.platform == platform,
                    ReportRow.community_id == community_id,
                    col(ReportRow.counted).is_(True),
                    col(ReportRow.at) >= since,
                )
            )
        ).first()
        communities += 1 if new_community else 0
    session.add(
        ReportRow(
            service_id=service_id,
            component=component,
            what=what,
            details=details,
            reporter_hash=reporter_hash,
            platform=platform,
            community_id=community_id,
            at=now,
            counted=counted,
        )
    )
    return ReportOutcome(counted=counted, reporters=reporters, communities=communities)


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


async def spread(*, session: AsyncSession, service_id: str, since: datetime) -> tuple[int, int]:
    """Distinct reporters and distinct communities of counted reports since a moment."""
    row = (
        await session.exec(
            select(
                func.count(func.distinct(ReportRow.reporter_hash)),
                func.count(func.distinct(ReportRow.platform + ":" + ReportRow.community_id)),
            ).where(
                ReportRow.service_id == service_id,
                col(ReportRow.counted).is_(True),
                col(ReportRow.at) >= since,
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def reports_by(
    *,
    session: AsyncSession,
    reporter_hash: str | None = None,
    community: tuple[str, str] | None = None,
    since: datetime,
) -> int:
    """How many reports one user, or one community, sent since a moment (flood limits)."""
    query = select(func.count()).select_from(ReportRow).where(col(ReportRow.at) >= since)
    if reporter_hash is not None:
        query = query.where(ReportRow.reporter_hash == reporter_hash)
    if community is not None:
        query = query.where(
            ReportRow.platform == community[0], ReportRow.community_id == community[1]
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
