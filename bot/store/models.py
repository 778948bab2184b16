"""Database tables. Change them only together with a new alembic migration."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.core.alerts import AlertKind
from bot.core.outbox import DeliveryStatus
from bot.store.columns import utc_column


class ServiceRow(SQLModel, table=True):
    """A tracked service and the state we last derived for it."""

    __tablename__ = "services"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    provider: str = Field(max_length=200)
    state: str = Field(default="unknown", max_length=32)
    state_since: datetime | None = Field(default=None, sa_column=utc_column())
    checked_at: datetime | None = Field(default=None, sa_column=utc_column())


class SourceRow(SQLModel, table=True):
    """A status source URL, with what we need for polite conditional polling."""

    __tablename__ = "sources"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000, unique=True)
    kind: str = Field(max_length=32)
    page_name: str | None = Field(default=None, max_length=300)
    page_url: str | None = Field(default=None, max_length=2000)
    indicator: str = Field(default="unknown", max_length=32)
    description: str | None = Field(default=None, sa_column=Column(Text))
    etag: str | None = Field(default=None, max_length=500)
    last_modified: str | None = Field(default=None, max_length=100)
    last_error: str | None = Field(default=None, max_length=500)
    consecutive_failures: int = 0
    # The last read that stored something here: a first read, new content, a failure or a
    # recovery. An unchanged read moves only its services' `checked_at` ("last checked").
    fetched_at: datetime | None = Field(default=None, sa_column=utc_column())
    read_ok_at: datetime | None = Field(default=None, sa_column=utc_column())


class ComponentRow(SQLModel, table=True):
    """A leaf component of a source's page, as last read."""

    __tablename__ = "components"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sources.id", index=True, ondelete="CASCADE")
    external_id: str = Field(max_length=200)
    name: str = Field(max_length=300)
    status: str = Field(max_length=32)
    group_name: str | None = Field(default=None, max_length=300)
    position: int = 0
    present: bool = True


class IncidentRow(SQLModel, table=True):
    """An incident published by a source; kept as history after it resolves."""

    __tablename__ = "incidents"
    __table_args__ = (UniqueConstraint("source_id", "external_id"),)

    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sources.id", index=True, ondelete="CASCADE")
    external_id: str = Field(max_length=200)
    name: str = Field(max_length=500)
    status: str = Field(max_length=32)
    impact: str = Field(max_length=32)
    url: str | None = Field(default=None, max_length=2000)
    started_at: datetime | None = Field(default=None, sa_column=utc_column())
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())
    first_seen_at: datetime = Field(sa_column=utc_column(nullable=False))


class IncidentUpdateRow(SQLModel, table=True):
    """One official update on an incident; ``fingerprint`` makes re-reads idempotent."""

    __tablename__ = "incident_updates"
    __table_args__ = (UniqueConstraint("incident_id", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True, ondelete="CASCADE")
    fingerprint: str = Field(max_length=300)
    status: str = Field(max_length=32)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class ServiceMemoryRow(SQLModel, table=True):
    """Detection's memory of one service as one source tells it (ServiceMemory as JSON)."""

    __tablename__ = "service_memories"

    service_id: str = Field(
        primary_key=True, foreign_key="services.id", ondelete="CASCADE", max_length=64
    )
    source_url: str = Field(primary_key=True, max_length=2000)
    memory: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(sa_column=utc_column(nullable=False))


class DetectionEventRow(SQLModel, table=True):
    """A detection event; (service_id, key) is unique so a replay never stores it twice."""

    __tablename__ = "detection_events"
    __table_args__ = (UniqueConstraint("service_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: str = Field(
        foreign_key="services.id", index=True, ondelete="CASCADE", max_length=64
    )
    kind: str = Field(max_length=40)
    key: str = Field(max_length=400)
    at: datetime = Field(sa_column=utc_column(nullable=False))
    incident_id: str | None = Field(default=None, max_length=200)
    title: str | None = Field(default=None, max_length=500)
    detail: str = Field(sa_column=Column(Text, nullable=False))


class ServiceIncidentRow(SQLModel, table=True):
    """Which stored incidents concern which service (a shared page serves several)."""

    __tablename__ = "service_incidents"

    service_id: str = Field(
        primary_key=True, foreign_key="services.id", ondelete="CASCADE", max_length=64
    )
    incident_id: int = Field(primary_key=True, foreign_key="incidents.id", ondelete="CASCADE")


class CustomServiceRow(SQLModel, table=True):
    """A service an admin added by URL (`/service add`); polled like the built-in ones."""

    __tablename__ = "custom_services"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=100)
    kind: str = Field(max_length=32)
    url: str = Field(max_length=2000)
    status_page: str = Field(max_length=2000)
    added_by_platform: str = Field(max_length=32)
    added_by_community: str = Field(max_length=200)
    added_at: datetime = Field(sa_column=utc_column(nullable=False))


class SubscriptionRow(SQLModel, table=True):
    """A channel following a service's alerts; scoped to one community on one platform."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("platform", "community_id", "channel_id", "service_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=32)
    community_id: str = Field(max_length=200, index=True)
    channel_id: str = Field(max_length=200)
    service_id: str = Field(max_length=64, index=True)
    components: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    min_severity: str = Field(default="minor", max_length=16)
    mention_role: str | None = Field(default=None, max_length=100)
    """Who new alerts ping, canonical (``role:123``, ``subteam:S1``, ``here``): `Mention`."""
    early_warnings: bool = False
    maintenance: bool = True
    alternatives: bool = True
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))


class AlertRow(SQLModel, table=True):
    """The living state of one incident (or maintenance) as channels show it."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("service_id", "subject_id"),)

    id: int | None = Field(default=None, primary_key=True)
    service_id: str = Field(max_length=64, index=True)
    subject_id: str = Field(max_length=200)
    kind: str = Field(default=AlertKind.INCIDENT, max_length=16)
    title: str = Field(max_length=500)
    status: str = Field(max_length=32)
    impact: str = Field(max_length=32)
    url: str | None = Field(default=None, max_length=2000)
    components: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    latest_update: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    latest_update_at: datetime | None = Field(default=None, sa_column=utc_column())
    started_at: datetime = Field(sa_column=utc_column(nullable=False))
    resolved_at: datetime | None = Field(default=None, sa_column=utc_column())
    version: int = 1
    reminders_sent: int = 0
    updated_at: datetime = Field(sa_column=utc_column(nullable=False))


class AlertMessageRow(SQLModel, table=True):
    """The one message an alert has in one subscribed channel (what edits and replies target)."""

    __tablename__ = "alert_messages"
    __table_args__ = (UniqueConstraint("alert_id", "subscription_id"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_id: int = Field(foreign_key="alerts.id", index=True, ondelete="CASCADE")
    subscription_id: int = Field(foreign_key="subscriptions.id", index=True, ondelete="CASCADE")
    message_id: str = Field(max_length=200)
    thread_id: str | None = Field(default=None, max_length=200)
    rendered_version: int = 0


class DeliveryRow(SQLModel, table=True):
    """The outbox: one action (post, edit, thread reply) for one alert in one channel."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_done_at", "done_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=200, unique=True)
    alert_id: int = Field(foreign_key="alerts.id", index=True, ondelete="CASCADE")
    subscription_id: int = Field(foreign_key="subscriptions.id", index=True, ondelete="CASCADE")
    platform: str = Field(max_length=32)
    action: str = Field(max_length=16)
    body: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    status: str = Field(default=DeliveryStatus.PENDING, max_length=16, index=True)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_column=utc_column(nullable=False))
    last_error: str | None = Field(default=None, max_length=300)
    created_at: datetime = Field(sa_column=utc_column(nullable=False))
    done_at: datetime | None = Field(default=None, sa_column=utc_column())
    claimed_by: int | None = None
    """The worker process holding it (PostgreSQL: the key of that process's advisory lock)."""


# Tables defined in other modules register on the same metadata once imported.
from bot.store import (  # noqa: E402, F401
    community_models,
    crowd_models,
    slack_install_models,
    slack_replay_store,
    webhook_models,
)
