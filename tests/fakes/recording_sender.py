"""A PlatformSender that records what it was asked to do, with scripted failures."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field

from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.delivery.sender import ChannelRef, DeliveryError, SentMessage


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
    """Remembers every message like a platform would (keys included, for find_sent)."""

    platform: str = "test"
    calls: list[Call] = field(default_factory=list)
    failures: deque[DeliveryError] = field(default_factory=deque)
    messages: dict[str, SentMessage] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

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
        self.messages[key] = message
        self.calls.append(Call("send", channel, reply, key, message.message_id, mention_role))
        return message

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        self._maybe_fail()
        self.calls.append(Call("edit", channel, reply, message_id=message.message_id))

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        self._maybe_fail()
        sent = SentMessage(
            message_id=f"msg-{next(self._ids)}",
            thread_id=message.thread_id or f"t-{message.message_id}",
        )
        self.messages[key] = sent
        self.calls.append(Call("thread", channel, reply, key, message.message_id))
        return sent

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        return self.messages.get(key)

    def actions(self) -> list[tuple[str, str]]:
        """(action, channel id) in order."""
        return [(c.action, c.channel.channel_id) for c in self.calls]
