"""Tables for crowd reports and early warnings, and per-community admin roles."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text
from sqlmodel import Field, SQLModel

from bot.store.columns import utc_column


class ReportRow(SQLModel, table=True):
    """One "I have a problem" from a user; ``counted`` is false for repeats inside the window."""

    __tablename__ = "reports"
    __table_args__ = (
        Index("ix_reports_service_at", "service_id", "at"),
        Index("ix_reports_reporter_at", "reporter_hash", "at"),
        Index("ix_reports_at", "at"),  # retention prunes by age alone
    )

    id: int | None = Field(default=None, primary_key=True)
    service_id: str = Field(max_length=64)
    component: str | None = Field(default=None, max_length=100)
    what: str = Field(max_length=16)
    details: str | None = Field(default=None, max_length=300)
    reporter_hash: str = Field(max_length=64)
    platform: str = Field(max_length=32)
    community_id: str = Field(max_length=200)
    at: datetime = Field(sa_column=utc_column(nullable=False))
    counted: bool = True


class CrowdMemoryRow(SQLModel, table=True):
    """The crowd detector's memory of one service (baseline and level), as JSON."""

    __tablename__ = "crowd_memories"

    service_id: str = Field(primary_key=True, max_length=64)
    memory: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=utc_column(nullable=False))
    last_report_id: int = 0
    """The newest report already fed to the detector (ids, unlike times, never arrive late)."""


class EarlyWarningRow(SQLModel, table=True):
    """An unofficial early warning, and how far ahead of the official incident it was."""

    __tablename__ = "early_warnings"

    id: int | None = Field(default=None, primary_key=True)
    service_id: str = Field(max_length=64, index=True)
    alert_id: int | None = Field(default=None, foreign_key="alerts.id", ondelete="SET NULL")
    level: str = Field(max_length=16)
    first_report_at: datetime = Field(sa_column=utc_column(nullable=False))
    opened_at: datetime = Field(sa_column=utc_column(nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=utc_column())
    outcome: str | None = Field(default=None, max_length=16)  # confirmed | faded
    incident_id: str | None = Field(default=None, max_length=200)
    lead_seconds: int | None = None
    facts: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    """The latest CrowdReading as JSON (what the alert shows)."""


class CommunityAdminRoleRow(SQLModel, table=True):
    """A role whose members may use admin commands in one community (besides platform admins)."""

    __tablename__ = "community_admin_roles"

    platform: str = Field(primary_key=True, max_length=32)
    community_id: str = Field(primary_key=True, max_length=200)
    role_id: str = Field(primary_key=True, max_length=100)
