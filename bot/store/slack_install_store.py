"""Slack installs on our database: slack_sdk's async installation and OAuth state stores.

slack_sdk ships SQLAlchemy stores, but with their own tables (naive timestamps, one row per
install ever made) and a wall clock. These implement the same `AsyncInstallationStore` /
`AsyncOAuthStateStore` interfaces on our sqlmodel tables: one row per workspace, aware UTC times,
and the injected clock, so expiry is testable and a reinstall simply replaces the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.outbox import UNFINISHED
from bot.core.timeutil import Clock
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.slack_install_models import SlackInstallationRow, SlackOAuthStateRow

log = logging.getLogger(__name__)

STATE_TTL = timedelta(minutes=10)
_STATE_KEY_PURPOSE = b"outagebot slack oauth state v1"
"""Derives the state-signing key from the client secret, so the secret itself signs nothing."""
PLATFORM = "slack"


def workspace_key(
    *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
) -> str | None:
    """The row key: the team, or the whole org for an org-wide (Enterprise Grid) install."""
    if is_enterprise_install or not team_id:
        return enterprise_id or None
    return team_id


class SlackInstallationStore(AsyncInstallationStore):
    """Bot installs, one per workspace; user tokens are never asked for, so never kept."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        key = workspace_key(
            enterprise_id=installation.enterprise_id,
            team_id=installation.team_id,
            is_enterprise_install=installation.is_enterprise_install,
        )
        if key is None or not installation.bot_token:
            raise ValueError("a Slack installation needs a team (or org) and a bot token")
        async with self._sessions() as session:
            row = await session.get(SlackInstallationRow, key)
            row = row or SlackInstallationRow(
                workspace_id=key, bot_token="", installer_user_id="", installed_at=self._clock()
            )
            row.team_id = installation.team_id
            row.team_name = _cut(installation.team_name, 200)
            row.enterprise_id = installation.enterprise_id
            row.enterprise_name = _cut(installation.enterprise_name, 200)
            row.is_enterprise_install = bool(installation.is_enterprise_install)
            row.app_id = installation.app_id
            row.bot_id = installation.bot_id
            row.bot_user_id = installation.bot_user_id
            row.bot_token = installation.bot_token
            row.bot_scopes = ",".join(installation.bot_scopes or [])[:1000]
            row.installer_user_id = installation.user_id
            row.installed_at = self._clock()
            session.add(row)
            await session.commit()

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("installs are saved whole, with async_save")

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        row = await self._find(enterprise_id, team_id, is_enterprise_install)
        if row is None:
            return None
        return Bot(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=row.bot_token,
            bot_id=row.bot_id or "",
            bot_user_id=row.bot_user_id or "",
            bot_scopes=row.bot_scopes,
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at.timestamp(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        row = await self._find(enterprise_id, team_id, is_enterprise_install)
        if row is None:
            return None
        return Installation(
            app_id=row.app_id,
            enterprise_id=row.enterprise_id,
            enterprise_name=row.enterprise_name,
            team_id=row.team_id,
            team_name=row.team_name,
            bot_token=row.bot_token,
            bot_id=row.bot_id,
            bot_user_id=row.bot_user_id,
            bot_scopes=row.bot_scopes,
            user_id=row.installer_user_id,
            is_enterprise_install=row.is_enterprise_install,
            installed_at=row.installed_at.timestamp(),
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self.async_delete_installation(enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is not None:
            return  # a user's token revoked: we hold none, and the bot's install stays
        key = team_id or enterprise_id
        if not key:
            return
        async with self._sessions() as session:
            await session.exec(
                delete(SlackInstallationRow).where(col(SlackInstallationRow.workspace_id) == key)
            )
            await session.commit()

    async def bot_token(self, team_id: str) -> str | None:
        """The bot token of the workspace (or org-wide install) that owns ``team_id``."""
        row = await self._find(None, team_id, False)
        return row.bot_token if row is not None else None

    async def _find(
        self, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None
    ) -> SlackInstallationRow | None:
        key = workspace_key(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        async with self._sessions() as session:
            row = await session.get(SlackInstallationRow, key) if key else None
            if row is None and enterprise_id:
                # A workspace of an org where the app was installed org-wide.
                row = await session.get(SlackInstallationRow, enterprise_id)
                if row is not None and not row.is_enterprise_install:
                    row = None
            return row


class SlackOAuthStateStore(AsyncOAuthStateStore):
    """Signed OAuth states: issuing one stores nothing, finishing records it as used.

    A state is ``nonce.expiry.mac``, the mac an HMAC-SHA256 under a key derived from the Slack
    client secret. A flood of ``GET /slack/install`` therefore fills nothing and blocks no one,
    and a state issued before a restart (or by another process) is still good. Single use: the
    first redirect inserts the state into the table of used ones; a second finds it there. Used
    states are swept once they expire, so the table holds at most ten minutes of real installs.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        secret: str,
        clock: Clock,
        ttl: timedelta = STATE_TTL,
    ) -> None:
        if not secret:
            raise ValueError("signed OAuth states need the Slack client secret")
        self._sessions = sessions
        self._key = hmac.new(secret.encode(), _STATE_KEY_PURPOSE, hashlib.sha256).digest()
        self._clock = clock
        self._ttl = ttl

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        expires = int((self._clock() + self._ttl).timestamp())
        signed = f"{secrets.token_urlsafe(16)}.{expires:x}"
        return f"{signed}.{self._mac(signed)}"

    async def async_consume(self, state: str) -> bool:
        expires_at = self._valid_until(state)
        now = self._clock()
        if expires_at is None or expires_at <= now:
            return False
        async with self._sessions() as session:
            await session.exec(
                delete(SlackOAuthStateRow).where(col(SlackOAuthStateRow.expires_at) <= now)
            )
            session.add(SlackOAuthStateRow(state=state, expires_at=expires_at))
            try:
                await session.commit()
            except IntegrityError:
                # Already used: of two concurrent redirects with one state, one wins.
                await session.rollback()
                return False
        return True

    def _valid_until(self, state: str) -> datetime | None:
        if not state or len(state) > 64:
            return None
        signed, _, mac = state.rpartition(".")
        _, _, expiry = signed.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(signed).encode()):
            return None
        try:
            return datetime.fromtimestamp(int(expiry, 16), UTC)
        except (ValueError, OverflowError, OSError):
            return None

    def _mac(self, signed: str) -> str:
        digest = hmac.new(self._key, signed.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:18]).decode()


async def remove_workspace(
    sessions: async_sessionmaker[AsyncSession], *, team_id: str
) -> tuple[int, int]:
    """Forget a workspace's install and its subscriptions; (subscriptions, pending deliveries).

    Deliveries belong to their subscription (ON DELETE CASCADE), so the ones still waiting go
    with it and nothing is retried against a workspace that no longer has us. A delivery already
    in a worker's hands fails there: its subscription is gone, and the sender has no token.
    """
    async with sessions() as session:
        ids = list(
            (
                await session.exec(
                    select(SubscriptionRow.id).where(
                        SubscriptionRow.platform == PLATFORM,
                        SubscriptionRow.community_id == team_id,
                    )
                )
            ).all()
        )
        pending = 0
        if ids:
            pending = len(
                (
                    await session.exec(
                        select(DeliveryRow.id).where(
                            col(DeliveryRow.subscription_id).in_(ids),
                            col(DeliveryRow.status).in_(UNFINISHED),
                        )
                    )
                ).all()
            )
            await session.exec(delete(SubscriptionRow).where(col(SubscriptionRow.id).in_(ids)))
        await session.exec(
            delete(SlackInstallationRow).where(col(SlackInstallationRow.workspace_id) == team_id)
        )
        await session.commit()
        return len(ids), pending


def _cut(value: str | None, limit: int) -> str | None:
    return value[:limit] if value else value
