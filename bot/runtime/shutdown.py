"""One deadline for the whole shutdown, shared by its steps.

Docker (and systemd, Kubernetes) kill a process some seconds after SIGTERM: ten by default,
``stop_grace_period`` in docker-compose.yml. Each step of our shutdown (adapters, the outbox,
polls in flight, the leader lock, the web server) gets what is left of one budget,
``SHUTDOWN_TIMEOUT_SECONDS``, so together they finish before that kill. A step that overruns
is cancelled: the outbox and the polls are crash-safe, so that loses nothing already committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

TAIL_SHARE = 0.2
"""Part of the budget kept back for the last, quick steps (leader lock, web server): a hung
poll or delivery may use the rest, never all of it."""


class ShutdownDeadline:
    """Time left until the shutdown must be over, measured on a monotonic clock."""

    def __init__(self, seconds: float, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._monotonic = monotonic
        self._end = monotonic() + seconds

    def remaining(self, *, keep: float = 0.0) -> float:
        """Seconds left, less ``keep`` held back for later steps (never below zero)."""
        return max(0.0, self._end - self._monotonic() - keep)

    @property
    def tail(self) -> float:
        """What the slow steps leave for the quick last ones."""
        return self.seconds * TAIL_SHARE

    async def run(self, what: str, step: Awaitable[object], *, keep: float = 0.0) -> None:
        """Await ``step`` for at most the time left (less ``keep``); cancel it after that."""
        try:
            await asyncio.wait_for(step, timeout=self.remaining(keep=keep))
        except TimeoutError:
            log.warning(
                "shutdown: %s took too long (SHUTDOWN_TIMEOUT_SECONDS=%g); stopped it",
                what,
                self.seconds,
            )
