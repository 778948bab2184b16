"""A PlatformSender that records what it was asked to do, with scripted failures."""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from dataclasses import dataclass, field

from bot.adapters.discord.sender import SCAN_LIMIT as DISCORD_SCAN_LIMIT
from bot.adapters.slack.sender import HISTORY_LIMIT as SLACK_HISTORY_LIMIT
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.delivery.sender import ChannelRef, DeliveryError, SentMessage

SCAN_DEPTH = min(DISCORD_SCAN_LIMIT, SLACK_HISTORY_LIMIT)
"""How many of the latest messages `find_sent` looks at: as few as the shallower real sender,
so a lookup that succeeds here succeeds on both platforms."""

Place = tuple[str, str, str | None]
"""Where a message lives: (community, channel, thread or None for the channel itself)."""


@dataclass
class Call:
    action: str
    channel: ChannelRef
    reply: Reply
    key: str | None = None
    message_id: str | None = None
    mention_role: Mention | None = None


@dataclass
class RecordingSender:
    """Remembers every message like a platform would (keys included, for find_sent).

    `find_sent` is as limited as the real senders: it sees only the channel (or the thread) it
    is asked about, and only its latest `scan_depth` messages."""

    platform: str = "test"
    calls: list[Call] = field(default_factory=list)
    failures: deque[DeliveryError] = field(default_factory=deque)
    messages: dict[str, SentMessage] = field(default_factory=dict)
    """Every message sent, by delivery key, wherever it went."""
    places: dict[Place, list[tuple[str, SentMessage]]] = field(default_factory=dict)
    """(key, message) of each channel and thread, oldest first."""
    scan_depth: int = SCAN_DEPTH
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _called: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for_calls(self, count: int) -> None:
        """Until `count` calls were made; no polling (bound it with ``asyncio.timeout``)."""
        while len(self.calls) < count:
            self._called.clear()
            await self._called.wait()

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._called.set()

    def fail_next(self, *errors: DeliveryError) -> None:
        self.failures.extend(errors)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.popleft()

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        self._maybe_fail()
        message = SentMessage(message_id=f"msg-{next(self._ids)}")
        self._place(channel, None, key, message)
        self._record(Call("send", channel, reply, key, message.message_id, mention_role))
        return message

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        self._maybe_fail()
        self._record(Call("edit", channel, reply, message_id=message.message_id))

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        self._maybe_fail()
        # A thread started from a message takes its id, as on Discord (and its ts on Slack).
        sent = SentMessage(
            message_id=f"msg-{next(self._ids)}", thread_id=message.thread_id or message.message_id
        )
        self._place(channel, sent.thread_id, key, sent)
        self._record(Call("thread", channel, reply, key, message.message_id))
        return sent

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        place = (channel.community_id, channel.channel_id, thread_id)
        latest = self.places.get(place, [])[-self.scan_depth :]
        return next((sent for k, sent in reversed(latest) if k == key), None)

    def _place(
        self, channel: ChannelRef, thread_id: str | None, key: str, message: SentMessage
    ) -> None:
        self.messages[key] = message
        place = (channel.community_id, channel.channel_id, thread_id)
        self.places.setdefault(place, []).append((key, message))

    def actions(self) -> list[tuple[str, str]]:
        """(action, channel id) in order."""
        return [(c.action, c.channel.channel_id) for c in self.calls]
