"""Repository functions of the community features. Writers stage changes; callers commit.

Workarounds are shared by every community on every platform; what one community does (hide,
settings, FAQ entries) is scoped to that community by (platform, community_id).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import AlertKind
from bot.core.ranking import Vote
from bot.store.community_models import (
    CommunitySettingsRow,
    FaqEntryRow,
    WorkaroundHideRow,
    WorkaroundReportRow,
    WorkaroundRow,
    WorkaroundVoteRow,
)
from bot.store.models import AlertRow, IncidentRow, IncidentUpdateRow, ServiceIncidentRow

GLOBAL_HIDE_REPORTS = 3
"""Reports from this many different communities hide a workaround everywhere."""


@dataclass(frozen=True, slots=True)
class Community:
    """One community on one platform: the scope of hides, settings and FAQ entries."""

    platform: str
    community_id: str


@dataclass(frozen=True, slots=True)
class VisibleWorkaround:
    """A workaround as one community may see it, with its votes and permitted origin."""

    row: WorkaroundRow
    votes: tuple[Vote, ...]
    origin_name: str | None
    """The origin community's name, only when that community allows showing it."""
    show_origin: bool


@dataclass(frozen=True, slots=True)
class StoredIncident:
    """A service's incident with its official updates (newest first)."""

    title: str
    impact: str
    status: str
    url: str | None
    started_at: datetime
    resolved_at: datetime | None
    updates: tuple[tuple[str, str, datetime], ...]
    """(status, body, created_at)"""
    external_id: str = ""


# --- workarounds -------------------------------------------------------------------------------


async def add_workaround(*, session: AsyncSession, row: WorkaroundRow) -> WorkaroundRow:
    """Stage a new workaround and give it its id."""
    session.add(row)
    await session.flush()
    return row


async def count_added_since(*, session: AsyncSession, author_hash: str, since: datetime) -> int:
    """How many workarounds a user added since ``since`` (for the rate limit)."""
    query = select(func.count(col(WorkaroundRow.id))).where(
        WorkaroundRow.author_hash == author_hash, col(WorkaroundRow.created_at) >= since
    )
    return int((await session.exec(query)).one())


async def get_workaround(*, session: AsyncSession, workaround_id: int) -> WorkaroundRow | None:
    """A workaround by id, whatever its visibility."""
    return await session.get(WorkaroundRow, workaround_id)


async def is_hidden_for(
    *, session: AsyncSession, workaround: WorkaroundRow, community: Community
) -> bool:
    """Whether a community does not see this workaround (hidden there or everywhere)."""
    if workaround.hidden_globally:
        return True
    hide = await session.get(
        WorkaroundHideRow, (workaround.id, community.platform, community.community_id)
    )
    return hide is not None


async def visible_workarounds(
    *, session: AsyncSession, service_id: str, community: Community, limit: int = 200
) -> list[VisibleWorkaround]:
    """A service's workarounds this community may see, with votes; unranked, newest first."""
    hidden_here = select(WorkaroundHideRow.workaround_id).where(
        WorkaroundHideRow.platform == community.platform,
        WorkaroundHideRow.community_id == community.community_id,
    )
    rows = (
        await session.exec(
            select(WorkaroundRow)
            .where(
                WorkaroundRow.service_id == service_id,
                col(WorkaroundRow.hidden_globally).is_(False),
                col(WorkaroundRow.id).not_in(hidden_here),
            )
            .order_by(col(WorkaroundRow.created_at).desc())
            .limit(limit)
        )
    ).all()
    ids = [r.id for r in rows if r.id is not None]
    votes: dict[int, list[Vote]] = {i: [] for i in ids}
    if ids:
        for vote in (
            await session.exec(
                select(WorkaroundVoteRow).where(col(WorkaroundVoteRow.workaround_id).in_(ids))
            )
        ).all():
            votes[vote.workaround_id].append(Vote(worked=vote.worked, at=vote.at))
    settings = await _settings_of(
        session, {(r.origin_platform, r.origin_community_id) for r in rows}
    )
    out = []
    for row in rows:
        setting = settings.get((row.origin_platform, row.origin_community_id))
        show = setting is not None and setting.show_origin
        out.append(
            VisibleWorkaround(
                row=row,
                votes=tuple(votes.get(row.id or 0, ())),
                origin_name=setting.community_name if show and setting else None,
                show_origin=show,
            )
        )
    return out


async def _settings_of(
    session: AsyncSession, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], CommunitySettingsRow]:
    if not keys:
        return {}
    ids = list({community_id for _, community_id in keys})
    rows = (
        await session.exec(
            select(CommunitySettingsRow).where(col(CommunitySettingsRow.community_id).in_(ids))
        )
    ).all()
    return {(r.platform, r.community_id): r for r in rows if (r.platform, r.community_id) in keys}


async def record_vote(
    *, session: AsyncSession, workaround_id: int, voter_hash: str, worked: bool, now: datetime
) -> bool:
    """Stage a user's vote; a repeat replaces their earlier one. True when it is their first."""
    for _ in range(2):  # a concurrent first vote by the same user loses the race once, at most
        existing = (
            await session.exec(
                select(WorkaroundVoteRow).where(
                    WorkaroundVoteRow.workaround_id == workaround_id,
                    WorkaroundVoteRow.voter_hash == voter_hash,
                )
            )
        ).first()
        if existing is not None:
            existing.worked, existing.at = worked, now
            session.add(existing)
            return False
        try:
            async with session.begin_nested():
                session.add(
                    WorkaroundVoteRow(
                        workaround_id=workaround_id, voter_hash=voter_hash, worked=worked, at=now
                    )
                )
        except IntegrityError:
            continue
        return True
    raise RuntimeError("vote could not be recorded")


async def count_votes_since(*, session: AsyncSession, voter_hash: str, since: datetime) -> int:
    """How many workarounds a user voted on since ``since`` (for the rate limit)."""
    query = select(func.count(col(WorkaroundVoteRow.id))).where(
        WorkaroundVoteRow.voter_hash == voter_hash, col(WorkaroundVoteRow.at) >= since
    )
    return int((await session.exec(query)).one())


async def vote_counts(*, session: AsyncSession, workaround_id: int) -> tuple[int, int]:
    """(worked, didn't work): each user counted once."""
    rows = (
        await session.exec(
            select(WorkaroundVoteRow.worked).where(WorkaroundVoteRow.workaround_id == workaround_id)
        )
    ).all()
    worked = sum(1 for w in rows if w)
    return worked, len(rows) - worked


async def hide_locally(
    *, session: AsyncSession, workaround_id: int, community: Community, now: datetime
) -> bool:
    """Hide a workaround for one community; False when it already was."""
    key = (workaround_id, community.platform, community.community_id)
    if await session.get(WorkaroundHideRow, key) is not None:
        return False
    session.add(
        WorkaroundHideRow(
            workaround_id=workaround_id,
            platform=community.platform,
            community_id=community.community_id,
            at=now,
        )
    )
    return True


async def unhide_locally(
    *, session: AsyncSession, workaround_id: int, community: Community
) -> bool:
    """Show a locally hidden workaround again; False when it was not hidden here."""
    hide = await session.get(
        WorkaroundHideRow, (workaround_id, community.platform, community.community_id)
    )
    if hide is None:
        return False
    await session.delete(hide)
    return True


async def report(
    *,
    session: AsyncSession,
    workaround: WorkaroundRow,
    community: Community,
    reporter_hash: str,
    now: datetime,
) -> tuple[bool, int]:
    """Stage one community's report. Returns (new report, communities that reported it).

    At `GLOBAL_HIDE_REPORTS` communities the workaround is hidden everywhere.
    """
    key = (workaround.id, community.platform, community.community_id)
    fresh = await session.get(WorkaroundReportRow, key) is None
    if fresh:
        session.add(
            WorkaroundReportRow(
                workaround_id=workaround.id or 0,
                platform=community.platform,
                community_id=community.community_id,
                reporter_hash=reporter_hash,
                at=now,
            )
        )
        await session.flush()
    reports = int(
        (
            await session.exec(
                select(func.count()).where(WorkaroundReportRow.workaround_id == workaround.id)
            )
        ).one()
    )
    if reports >= GLOBAL_HIDE_REPORTS and not workaround.hidden_globally:
        workaround.hidden_globally = True
        session.add(workaround)
    return fresh, reports


async def remove_workaround(*, session: AsyncSession, workaround: WorkaroundRow) -> None:
    """Delete a workaround with its votes, hides and reports."""
    await session.exec(
        delete(WorkaroundVoteRow).where(col(WorkaroundVoteRow.workaround_id) == workaround.id)
    )
    await session.exec(
        delete(WorkaroundHideRow).where(col(WorkaroundHideRow.workaround_id) == workaround.id)
    )
    await session.exec(
        delete(WorkaroundReportRow).where(col(WorkaroundReportRow.workaround_id) == workaround.id)
    )
    await session.delete(workaround)


# --- community settings ------------------------------------------------------------------------


async def get_settings(
    *, session: AsyncSession, community: Community
) -> CommunitySettingsRow | None:
    """A community's settings, if it ever changed any."""
    return await session.get(CommunitySettingsRow, (community.platform, community.community_id))


async def set_origin(
    *,
    session: AsyncSession,
    community: Community,
    show: bool,
    name: str | None,
    now: datetime,
) -> CommunitySettingsRow:
    """Whether this community's workarounds show where they come from, and under which name."""
    row = await get_settings(session=session, community=community) or CommunitySettingsRow(
        platform=community.platform, community_id=community.community_id, updated_at=now
    )
    row.show_origin = show
    if name is not None:
        row.community_name = name
    row.updated_at = now
    session.add(row)
    return row


# --- FAQ entries -------------------------------------------------------------------------------


async def faq_entries(*, session: AsyncSession, community: Community) -> list[FaqEntryRow]:
    """A community's own FAQ entries, by topic."""
    return list(
        (
            await session.exec(
                select(FaqEntryRow)
                .where(
                    FaqEntryRow.platform == community.platform,
                    FaqEntryRow.community_id == community.community_id,
                )
                .order_by(col(FaqEntryRow.topic))
            )
        ).all()
    )


async def faq_entry(
    *, session: AsyncSession, community: Community, topic: str
) -> FaqEntryRow | None:
    """A community's entry for one topic."""
    return (
        await session.exec(
            select(FaqEntryRow).where(
                FaqEntryRow.platform == community.platform,
                FaqEntryRow.community_id == community.community_id,
                FaqEntryRow.topic == topic,
            )
        )
    ).first()


async def set_faq_entry(
    *, session: AsyncSession, community: Community, topic: str, text: str, now: datetime
) -> bool:
    """Create or replace a community's entry; True when it is new."""
    row = await faq_entry(session=session, community=community, topic=topic)
    created = row is None
    if row is None:
        row = FaqEntryRow(
            platform=community.platform,
            community_id=community.community_id,
            topic=topic,
            text=text,
            updated_at=now,
        )
    row.text, row.updated_at = text, now
    session.add(row)
    return created


async def remove_faq_entry(*, session: AsyncSession, community: Community, topic: str) -> bool:
    """Delete a community's entry; False when there was none."""
    row = await faq_entry(session=session, community=community, topic=topic)
    if row is None:
        return False
    await session.delete(row)
    return True


# --- incidents, as the FAQ and history read them -----------------------------------------------


async def open_alert(*, session: AsyncSession, service_id: str) -> AlertRow | None:
    """The service's most recent open incident alert, if any."""
    return (
        await session.exec(
            select(AlertRow)
            .where(
                AlertRow.service_id == service_id,
                AlertRow.kind == AlertKind.INCIDENT,
                col(AlertRow.resolved_at).is_(None),
            )
            .order_by(col(AlertRow.started_at).desc())
        )
    ).first()


async def incidents_since(
    *, session: AsyncSession, service_id: str, since: datetime, updates: int = 0
) -> list[StoredIncident]:
    """The service's incidents that started or were open since ``since``, newest first."""
    rows: Sequence[IncidentRow] = (
        await session.exec(
            select(IncidentRow)
            .join(ServiceIncidentRow, col(ServiceIncidentRow.incident_id) == col(IncidentRow.id))
            .where(ServiceIncidentRow.service_id == service_id)
            .where(
                (col(IncidentRow.resolved_at).is_(None)) | (col(IncidentRow.resolved_at) >= since)
            )
        )
    ).all()
    by_incident = await latest_updates(
        session=session, incident_ids=[r.id or 0 for r in rows], per_incident=updates
    )
    incidents = [stored_incident(r, by_incident.get(r.id or 0, ())) for r in rows]
    return sorted(incidents, key=lambda i: i.started_at, reverse=True)


async def latest_updates(
    *, session: AsyncSession, incident_ids: Sequence[int], per_incident: int
) -> dict[int, tuple[tuple[str, str, datetime], ...]]:
    """Up to ``per_incident`` official updates (status, body, when) per incident, newest first."""
    found: dict[int, list[tuple[str, str, datetime]]] = {i: [] for i in incident_ids}
    if per_incident <= 0 or not found:
        return {}
    for update in (
        await session.exec(
            select(IncidentUpdateRow)
            .where(col(IncidentUpdateRow.incident_id).in_(list(found)))
            .order_by(col(IncidentUpdateRow.created_at).desc())
        )
    ).all():
        bucket = found[update.incident_id]
        if len(bucket) < per_incident:
            bucket.append((update.status, update.body, update.created_at))
    return {incident_id: tuple(updates) for incident_id, updates in found.items()}


def stored_incident(
    row: IncidentRow, updates: tuple[tuple[str, str, datetime], ...] = ()
) -> StoredIncident:
    """The stored incident as the cogs and pages read it."""
    return StoredIncident(
        title=row.name,
        impact=row.impact,
        status=row.status,
        url=row.url,
        started_at=row.started_at or row.first_seen_at,
        resolved_at=row.resolved_at,
        updates=updates,
        external_id=row.external_id,
    )
