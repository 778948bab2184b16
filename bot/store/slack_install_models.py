"""Tables of multi-workspace Slack installs: one row per workspace, and pending OAuth states.

Imported at the end of `bot.store.models` so that every table is on ``SQLModel.metadata``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from bot.store.columns import UTCDateTime


class SlackInstallationRow(SQLModel, table=True):
    """The bot's install in one workspace (or one Enterprise Grid org for an org-wide install).

    ``workspace_id`` is the team id, or the enterprise id of an org-wide install: one key, so a
    reinstall replaces the row instead of piling up old tokens.
    """

    __tablename__ = "slack_installations"

    workspace_id: str = Field(primary_key=True, max_length=32)
    team_id: str | None = Field(default=None, max_length=32)
    team_name: str | None = Field(default=None, max_length=200)
    enterprise_id: str | None = Field(default=None, max_length=32, index=True)
    enterprise_name: str | None = Field(default=None, max_length=200)
    is_enterprise_install: bool = False
    app_id: str | None = Field(default=None, max_length=32)
    bot_id: str | None = Field(default=None, max_length=32)
    bot_user_id: str | None = Field(default=None, max_length=32)
    bot_token: str = Field(max_length=300)
    bot_scopes: str = Field(default="", max_length=1000)
    installer_user_id: str = Field(max_length=32)
    installed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class SlackOAuthStateRow(SQLModel, table=True):
    """A signed state /slack/oauth_redirect has used (issuing stores nothing), kept until it
    expires so it is used once."""

    __tablename__ = "slack_oauth_states"

    state: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
