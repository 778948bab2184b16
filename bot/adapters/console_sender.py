"""Alert delivery to the terminal: the console is a channel like any other (demo, `run`)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from bot.adapters.console_render import render_reply
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.core.timeutil import Clock
from bot.delivery.sender import ChannelRef, SentMessage

CONSOLE_PLATFORM = "console"


class ConsoleSender:
    """Prints posts, edits and thread replies; remembers keys so a retry never prints twice."""

    platform = CONSOLE_PLATFORM

    def __init__(self, *, write: Callable[[str], None], clock: Clock) -> None:
        self._write = write
        self._clock = clock
        self._ids = itertools.count(1)
        self._sent: dict[str, SentMessage] = {}

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        """Print a new alert message."""
        message = SentMessage(message_id=f"m{next(self._ids)}")
        self._sent[key] = message
        self._write(f"\n📣 [alert #{message.message_id}]\n{self._text(reply)}\n")
        return message

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        """Print the alert as it now reads."""
        self._write(f"\n✏️  [alert #{message.message_id} edited]\n{self._text(reply)}\n")

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        """Print a thread reply under the alert."""
        sent = SentMessage(message_id=f"m{next(self._ids)}", thread_id=message.message_id)
        self._sent[key] = sent
        body = self._text(reply).replace("\n", "\n   ")
        self._write(f"   ↳ [thread of #{message.message_id}] {body}\n")
        return sent

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        """A message printed earlier in this process under the same key."""
        return self._sent.get(key)

    def _text(self, reply: Reply) -> str:
        return render_reply(reply, self._clock())
