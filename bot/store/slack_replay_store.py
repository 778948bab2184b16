"""Slack requests already handled, kept five minutes, so a replay is acked but not run again.

Slack retries an event it thinks we missed, and a replayed slash command or click carries the
same ``trigger_id``. Memory alone forgets across a restart (and is per process); this table
remembers across both. A key is claimed with one insert-or-ignore, so two processes racing on
the same request cannot both run it. Imported at the end of `bot.store.models` so the table is
on ``SQLModel.metadata``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Column, CursorResult, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.columns import UTCDateTime

REMEMBER_FOR = timedelta(minutes=5)
"""Slack retries within a few minutes, and a signed request older than 5 minutes is refused."""
MAX_KEY_LENGTH = 200


class SlackSeenRequestRow(SQLModel, table=True):
    """One handled request: its ``trigger_id`` or ``event_id``, and when it arrived."""

    __tablename__ = "slack_seen_requests"

    request_key: str = Field(primary_key=True, max_length=MAX_KEY_LENGTH)
    seen_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))


async def claim(sessions: async_sessionmaker[AsyncSession], key: str, *, now: datetime) -> bool:
    """True the first time ``key`` is seen within `REMEMBER_FOR`; False for a replay.

    Rows older than that are purged first, so a key seen long ago counts as new (Slack never
    reuses one) and the table stays small without a scheduled job.
    """
    async with sessions() as session:
        await session.exec(
            delete(SlackSeenRequestRow).where(col(SlackSeenRequestRow.seen_at) < now - REMEMBER_FOR)
        )
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = (
            dialect.insert(SlackSeenRequestRow)
            .values(request_key=key[:MAX_KEY_LENGTH], seen_at=now)
            .on_conflict_do_nothing(index_elements=["request_key"])
        )
        result: CursorResult[tuple[()]] = await session.exec(insert)
        await session.commit()
    return result.rowcount == 1
