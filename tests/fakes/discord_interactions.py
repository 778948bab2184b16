"""The fake Discord's interactions: payloads shaped as today's Discord sends them, and the
lifecycle Discord enforces on their answers.

Discord allows one initial response (the callback) within 3 seconds of the interaction; a second
one is refused with 40060, a late one with 10062. Follow-ups and edits go to the interaction's
webhook, which exists only once the interaction was answered (10015 "Unknown Webhook" before:
discord/discord-api-docs#7220, discordjs/discord.js#6883) and for 15 minutes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CALLBACK_WINDOW_SECONDS = 3.0
TOKEN_LIFETIME_SECONDS = 15 * 60.0
APP_PERMISSIONS = "2248473465835073"  # what a bot invited with the usual scopes holds

Refusal = tuple[int, dict[str, Any]]
"""An HTTP status and Discord's JSON error body."""


@dataclass(slots=True)
class _Interaction:
    interaction_id: str
    created: float
    response_type: int | None = None


class InteractionLedger:
    """Every interaction the fake dispatched, by token, and whether it has been answered."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._by_token: dict[str, _Interaction] = {}

    def created(self, data: dict[str, Any]) -> None:
        """An INTERACTION_CREATE went out now (a RESUME's replay keeps the first time)."""
        token, interaction_id = data.get("token"), data.get("id")
        if isinstance(token, str) and isinstance(interaction_id, str):
            self._by_token.setdefault(token, _Interaction(interaction_id, self._now()))

    def callback(self, interaction_id: str, token: str, response_type: int) -> Refusal | None:
        """Record an initial response, or say why Discord refuses it."""
        interaction = self._by_token.get(token)
        if interaction is None or interaction.interaction_id != interaction_id:
            return 404, _error(10062, "Unknown interaction")
        if interaction.response_type is not None:
            return 400, _error(40060, "Interaction has already been acknowledged.")
        if self._now() - interaction.created > CALLBACK_WINDOW_SECONDS:
            return 404, _error(10062, "Unknown interaction")
        interaction.response_type = response_type
        return None

    def webhook(self, token: str) -> Refusal | None:
        """Why a follow-up or an edit of the answer is refused, if it is."""
        interaction = self._by_token.get(token)
        if interaction is None or interaction.response_type is None:
            return 404, _error(10015, "Unknown Webhook")
        if self._now() - interaction.created > TOKEN_LIFETIME_SECONDS:
            return 401, _error(50027, "Invalid Webhook Token")
        return None


def _error(code: int, message: str) -> dict[str, Any]:
    return {"message": message, "code": code}


def as_sent_today(payload: dict[str, Any], *, channel_object: bool = True) -> dict[str, Any]:
    """Add the fields today's Discord puts in every interaction to a docs-era ``payload``.

    ``channel_object=False`` leaves only ``channel_id``, as the documented examples have it."""
    guild_id = payload.get("guild_id")
    member = payload.get("member")
    user = member["user"] if member else payload.get("user") or {}
    payload.setdefault("app_permissions", APP_PERMISSIONS)
    payload.setdefault("entitlements", [])
    # "0": installed to a guild; "1": installed to a user (here, a DM with the bot).
    owners = {"0": guild_id} if guild_id else {"1": user.get("id")}
    payload.setdefault("authorizing_integration_owners", owners)
    payload.setdefault("context", 0 if guild_id else 1)  # guild, or the bot's DM
    payload.setdefault("locale", "en-US")
    if guild_id:
        payload.setdefault("guild_locale", "en-US")
    channel_id = payload.get("channel_id")
    if channel_object and channel_id and "channel" not in payload:
        payload["channel"] = _channel(channel_id, guild_id, user)
    return payload


def _channel(channel_id: str, guild_id: str | None, user: dict[str, Any]) -> dict[str, Any]:
    if guild_id is None:
        return {"id": channel_id, "type": 1, "flags": 0, "recipients": [user]}
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": "general",
        "position": 0,
        "flags": 0,
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "permissions": APP_PERMISSIONS,
    }
