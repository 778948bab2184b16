"""Who a new alert pings: a typed mention, parsed from what people type, stored canonically.

/subscribe receives platform markup (Discord ``<@&123>``, Slack ``<!subteam^S123|@team>``,
``@here``); renderers need a kind and an id. Parsing happens once, when the subscription is
made, so a mention no renderer understands is refused there instead of being stored and then
breaking (or silently missing from) every alert of that channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class MentionKind(StrEnum):
    """What a mention pings."""

    ROLE = "role"
    """A Discord role, by id."""
    SUBTEAM = "subteam"
    """A Slack user group, by id (``S…``)."""
    HERE = "here"
    """Slack: the channel's active members."""
    CHANNEL = "channel"
    """Slack: every member of the channel."""


_PLATFORM = {
    MentionKind.ROLE: "discord",
    MentionKind.SUBTEAM: "slack",
    MentionKind.HERE: "slack",
    MentionKind.CHANNEL: "slack",
}
_DISCORD_ROLE = re.compile(r"^(?:<@&(\d{5,25})>|(\d{5,25}))$")
_SLACK_GROUP = re.compile(r"^(?:<!subteam\^(S[A-Z0-9]{2,30})(?:\|[^>]*)?>|(S[A-Z0-9]{2,30}))$")
_SLACK_BROADCAST = re.compile(r"^(?:<!(here|channel)(?:\|[^>]*)?>|@(here|channel))$")
_STORED_ID = {MentionKind.ROLE: re.compile(r"^\d{5,25}$"), MentionKind.SUBTEAM: _SLACK_GROUP}

DISCORD_HINT = "mention must be a role picked from the list, like @ai-alerts (not a user)."
# A typed @handle is not enough: with escaping off (our manifest) Slack sends it as plain text,
# and only the id can be pinged. The id is in the group's profile.
SLACK_HINT = (
    "mention must be @here, @channel or a user group's ID, like S0123ABCD "
    "(shown in the group's profile)."
)


class MentionError(ValueError):
    """The text is no mention this platform can make; the message is for the user."""


@dataclass(frozen=True, slots=True)
class Mention:
    """A ping a channel's new alerts carry: a kind and, for roles and groups, an id."""

    kind: MentionKind
    id: str | None = None

    @property
    def platform(self) -> str:
        """The platform whose ids and markup this mention uses."""
        return _PLATFORM[self.kind]

    def stored(self) -> str:
        """The canonical text kept in the database: ``role:123``, ``subteam:S1``, ``here``."""
        return f"{self.kind.value}:{self.id}" if self.id else self.kind.value

    @classmethod
    def from_stored(cls, text: str | None) -> Mention | None:
        """The mention a stored value names, or None for no (or an unreadable) value."""
        if not text:
            return None
        name, _, ident = text.partition(":")
        try:
            kind = MentionKind(name)
        except ValueError:
            return None
        if kind in _STORED_ID:
            return cls(kind, ident) if _STORED_ID[kind].match(ident) else None
        return None if ident else cls(kind)


def parse_mention(text: str, *, platform: str) -> Mention:
    """What someone typed as ``mention:`` on ``platform``; `MentionError` when it is none.

    Discord: a role as the client fills it in (``<@&123>``) or its id. Slack: a user group as
    an escaped command sends it (``<!subteam^S1|@team>``) or its id, ``@here``, ``@channel``.
    Other platforms (the console, tests) accept either. Users and ``@everyone`` are refused:
    an alert pings a group that opted in, never the whole server.
    """
    text = text.strip()
    if platform != "slack" and (match := _DISCORD_ROLE.match(text)):
        return Mention(MentionKind.ROLE, match.group(1) or match.group(2))
    if platform != "discord":
        if match := _SLACK_GROUP.match(text):
            return Mention(MentionKind.SUBTEAM, match.group(1) or match.group(2))
        if match := _SLACK_BROADCAST.match(text):
            return Mention(MentionKind(match.group(1) or match.group(2)))
    raise MentionError(SLACK_HINT if platform == "slack" else DISCORD_HINT)
