"""The table of outgoing webhook targets (other systems receiving the alerts a channel gets).

A target follows services through ordinary `SubscriptionRow`s on the platform ``webhook`` whose
``channel_id`` is the target's id, so the outbox fans alerts out to it like to any channel.
Imported at the end of `bot.store.models` so that every table is on ``SQLModel.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.store.columns import UTCDateTime

WEBHOOK_PLATFORM = "webhook"
API_OWNER = "api"
"""The owner platform and community of targets created through the admin API."""


class WebhookTargetRow(SQLModel, table=True):
    """A URL that receives signed alert deliveries, owned by one community (or the API)."""

    __tablename__ = "webhook_targets"
    __table_args__ = (UniqueConstraint("owner_platform", "owner_community", "url"),)

    id: int | None = Field(default=None, primary_key=True)
    owner_platform: str = Field(max_length=32)
    owner_community: str = Field(max_length=200, index=True)
    notice_channel_id: str | None = Field(default=None, max_length=200)
    """Where `/subscribe` was run: a disabled target is announced there."""
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=100)
    """The HMAC signing key; the receiver holds a copy, so it cannot be a one-way hash."""
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=300)
    consecutive_failures: int = 0
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    last_success_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
