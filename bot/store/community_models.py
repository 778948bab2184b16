"""Tables of the community features: shared workarounds and their votes, FAQ entries, settings.

Imported at the end of `bot.store.models` so that every table is on ``SQLModel.metadata``.
User ids never appear here: only salted hashes (`bot.store.user_hash`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.columns import UTCDateTime


def _utc(*, nullable: bool = True) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable)


class WorkaroundRow(SQLModel, table=True):
    """A workaround shared by every community on every platform."""

    __tablename__ = "workarounds"

    id: int | None = Field(default=None, primary_key=True)
    service_id: str = Field(max_length=64, index=True)
    title: str = Field(max_length=200)
    steps: str = Field(sa_column=Column(Text, nullable=False))
    link: str | None = Field(default=None, max_length=2000)
    author_hash: str = Field(max_length=64, index=True)
    origin_platform: str = Field(max_length=32)
    origin_community_id: str = Field(max_length=200)
    incident_title: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(sa_column=_utc(nullable=False))
    hidden_globally: bool = False


class WorkaroundVoteRow(SQLModel, table=True):
    """One user's verdict on a workaround; a second vote replaces the first."""

    __tablename__ = "workaround_votes"
    __table_args__ = (UniqueConstraint("workaround_id", "voter_hash"),)

    id: int | None = Field(default=None, primary_key=True)
    workaround_id: int = Field(foreign_key="workarounds.id", index=True, ondelete="CASCADE")
    voter_hash: str = Field(max_length=64, index=True)
    worked: bool
    at: datetime = Field(sa_column=_utc(nullable=False))


class WorkaroundHideRow(SQLModel, table=True):
    """A community's admins hid a workaround for their own members only."""

    __tablename__ = "workaround_hides"

    workaround_id: int = Field(primary_key=True, foreign_key="workarounds.id", ondelete="CASCADE")
    platform: str = Field(primary_key=True, max_length=32)
    community_id: str = Field(primary_key=True, max_length=200)
    at: datetime = Field(sa_column=_utc(nullable=False))


class WorkaroundReportRow(SQLModel, table=True):
    """A community reported a workaround; reports from several communities hide it everywhere."""

    __tablename__ = "workaround_reports"

    workaround_id: int = Field(primary_key=True, foreign_key="workarounds.id", ondelete="CASCADE")
    platform: str = Field(primary_key=True, max_length=32)
    community_id: str = Field(primary_key=True, max_length=200)
    reporter_hash: str = Field(max_length=64)
    at: datetime = Field(sa_column=_utc(nullable=False))


class FaqEntryRow(SQLModel, table=True):
    """A community's own FAQ answer; it takes precedence over a built-in one of the same topic."""

    __tablename__ = "faq_entries"
    __table_args__ = (UniqueConstraint("platform", "community_id", "topic"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    community_id: str = Field(max_length=200, index=True)
    topic: str = Field(max_length=40)
    text: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class CommunitySettingsRow(SQLModel, table=True):
    """Per-community choices of the community features (whether to show where posts come from)."""

    __tablename__ = "community_settings"

    platform: str = Field(primary_key=True, max_length=32)
    community_id: str = Field(primary_key=True, max_length=200)
    show_origin: bool = False
    community_name: str | None = Field(default=None, max_length=100)
    updated_at: datetime = Field(sa_column=_utc(nullable=False))


class InstanceSecretRow(SQLModel, table=True):
    """Secrets every process of one deployment shares (the user-hash salt)."""

    __tablename__ = "instance_secrets"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=200)
    created_at: datetime = Field(sa_column=_utc(nullable=False))
