"""What we hold about one person (by their salted hash), and forgetting it. Callers commit.

A person is known to the store only as `bot.store.user_hash.user_hash` of their platform and
platform user id. That hash is the same in every community of the platform, so one query per
table finds their rows "everywhere" without knowing where they have been.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, update
from sqlalchemy.orm import Mapped
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.community_models import WorkaroundReportRow, WorkaroundRow, WorkaroundVoteRow
from bot.store.crowd_models import ReportRow
from bot.store.slack_install_models import SlackInstallationRow

ANONYMOUS = "anonymous"
"""What a forgotten author's or flagger's hash becomes: not hex, so it never equals a real hash."""


@dataclass(frozen=True, slots=True)
class PersonalData:
    """A summary of the rows tied to one person's hash."""

    reports: int
    """Crowd reports (`/report`), with their optional details text."""
    first_report_at: datetime | None
    last_report_at: datetime | None
    votes: int
    """Workaround votes."""
    workarounds: int
    """Workarounds they shared (the text is public; the hash says who wrote it)."""
    flags: int
    """Workarounds they reported as wrong or harmful on behalf of their community."""
    installs: int = 0
    """Slack workspaces whose install record names them (in clear) as the installer."""

    @property
    def empty(self) -> bool:
        """Whether nothing at all is tied to this person."""
        return not (self.reports or self.votes or self.workarounds or self.flags or self.installs)


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What `forget` changed."""

    reports_deleted: int
    votes_deleted: int
    workarounds_anonymised: int
    flags_anonymised: int
    installs_cleared: int = 0


async def personal_data(
    *, session: AsyncSession, person_hash: str, slack_user_id: str | None = None
) -> PersonalData:
    """Count everything stored under ``person_hash``, in every community.

    ``slack_user_id`` (a Slack caller's own id) also finds the Slack install records naming
    them: Slack's installation store keeps the installer's id as is, not hashed.
    """
    reports = (
        await session.exec(
            select(
                func.count(col(ReportRow.id)), func.min(ReportRow.at), func.max(ReportRow.at)
            ).where(ReportRow.reporter_hash == person_hash)
        )
    ).one()
    return PersonalData(
        reports=int(reports[0]),
        first_report_at=reports[1],
        last_report_at=reports[2],
        votes=await _count(session, col(WorkaroundVoteRow.voter_hash), person_hash),
        workarounds=await _count(session, col(WorkaroundRow.author_hash), person_hash),
        flags=await _count(session, col(WorkaroundReportRow.reporter_hash), person_hash),
        installs=(
            await _count(session, col(SlackInstallationRow.installer_user_id), slack_user_id)
            if slack_user_id
            else 0
        ),
    )


async def _count(session: AsyncSession, column: Mapped[str], value: str) -> int:
    query = select(func.count()).where(column == value)
    return int((await session.exec(query)).one())


async def forget(
    *, session: AsyncSession, person_hash: str, slack_user_id: str | None = None
) -> Forgotten:
    """Delete the person's reports and votes; keep their workarounds and flags, unattributed.

    With ``slack_user_id``, Slack install records stop naming them as the installer (the
    install itself, which the whole workspace uses, stays).

    Workarounds stay because other people rely on them and voted on them; their text is what
    the author chose to publish, while the hash is the only thing that ties it to them.
    """
    if person_hash == ANONYMOUS:  # never let the sentinel match every forgotten row
        raise ValueError("cannot forget the anonymous author")
    reports = await session.exec(
        delete(ReportRow).where(col(ReportRow.reporter_hash) == person_hash)
    )
    votes = await session.exec(
        delete(WorkaroundVoteRow).where(col(WorkaroundVoteRow.voter_hash) == person_hash)
    )
    authored = await session.exec(
        update(WorkaroundRow)
        .where(col(WorkaroundRow.author_hash) == person_hash)
        .values(author_hash=ANONYMOUS)
    )
    flags = await session.exec(
        update(WorkaroundReportRow)
        .where(col(WorkaroundReportRow.reporter_hash) == person_hash)
        .values(reporter_hash=ANONYMOUS)
    )
    installs = 0
    if slack_user_id:
        cleared = await session.exec(
            update(SlackInstallationRow)
            .where(col(SlackInstallationRow.installer_user_id) == slack_user_id)
            .values(installer_user_id="")
        )
        installs = cleared.rowcount
    return Forgotten(
        reports_deleted=reports.rowcount,
        votes_deleted=votes.rowcount,
        workarounds_anonymised=authored.rowcount,
        flags_anonymised=flags.rowcount,
        installs_cleared=installs,
    )
