"""A reply turned into platform text once, and reused for every channel that shows the same.

The worker hands every channel that shows the same alert version the same `Reply` object
(`bot.delivery.view_cache.RoundViews`), so a fan-out to 5,000 channels would otherwise render
the same embed or Block Kit 5,000 times: the largest share of a delivery's CPU after the HTTP
request itself. A sender keeps one `RenderOnce` and asks it for a reply's rendering with the
parameters its platform's rendering depends on (a mention, whether a footer marker is added);
the parts that differ per channel (the delivery's own marker, the channel id, the key in
metadata) are the sender's to put in afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from bot.core.commands import Reply
from bot.core.timeutil import Clock

Rendered = TypeVar("Rendered")

FRESH_FOR = timedelta(seconds=1)
"""How long a rendering is reused: relative times in a footer ("5 min ago") are at most this
stale, far below the minute they are written in, and a round of sends fits well inside it."""
MAX_ENTRIES = 256
"""Renderings kept; a round shows a handful of replies, each with a few mentions."""


@dataclass(frozen=True, slots=True)
class _Entry(Generic[Rendered]):
    reply: Reply
    """Held so that its ``id`` cannot be reused by another reply while the entry lives."""
    rendered_at: datetime
    rendered: Rendered


class RenderOnce(Generic[Rendered]):
    """Renderings of replies by identity and parameters, each reused for `FRESH_FOR`."""

    def __init__(
        self, clock: Clock, *, fresh_for: timedelta = FRESH_FOR, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._clock = clock
        self._fresh_for = fresh_for
        self._max_entries = max_entries
        self._entries: dict[tuple[int, Hashable], _Entry[Rendered]] = {}

    def get(
        self, reply: Reply, parameters: Hashable, render: Callable[[datetime], Rendered]
    ) -> Rendered:
        """``render(now)`` of ``reply`` with ``parameters``, or the rendering made for the same
        reply object and parameters less than `FRESH_FOR` ago. Keyed by identity, not equality:
        hashing a reply would cost a good part of rendering it."""
        now = self._clock()
        key = (id(reply), parameters)
        entry = self._entries.get(key)
        if entry is not None and entry.reply is reply and now - entry.rendered_at < self._fresh_for:
            return entry.rendered
        rendered = render(now)
        self._entries.pop(key, None)  # re-inserted last: the oldest entry is evicted first
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = _Entry(reply, now, rendered)
        return rendered
