"""Start parts in order and stop them in reverse, under one shutdown deadline.

An `AsyncExitStack` holds the stop steps: whatever started gets stopped, even when a later part
fails to start, and the composition root reads as a list of parts. The deadline's clock starts
with the first stop step (see `bot.runtime.shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from bot.runtime.shutdown import ShutdownDeadline

Stop = Callable[[], Awaitable[object]]


class Lifecycle:
    """Stop steps pushed as parts start; run last-in first-out when the block exits."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = timeout_seconds
        self._stack = contextlib.AsyncExitStack()
        self._deadline: ShutdownDeadline | None = None

    @property
    def deadline(self) -> ShutdownDeadline:
        """The shutdown budget, counted from the first stop step."""
        if self._deadline is None:
            self._deadline = ShutdownDeadline(self._timeout)
        return self._deadline

    def on_stop(self, what: str, stop: Stop, *, slow: bool = False) -> None:
        """Stop with ``stop()`` for at most the time left. ``slow`` steps (those that can hang)
        leave the deadline's tail to the quick last ones."""

        async def step() -> None:
            keep = self.deadline.tail if slow else 0.0
            await self.deadline.run(what, stop(), keep=keep)

        self._stack.push_async_callback(step)

    def on_stop_together(self, steps: Mapping[str, Stop], *, first: Callable[[], None]) -> None:
        """Slow steps awaited side by side, after ``first()``: a hung one must not eat the time
        of another one finishing its write."""

        async def step() -> None:
            first()
            keep = self.deadline.tail
            await asyncio.gather(
                *(self.deadline.run(what, stop(), keep=keep) for what, stop in steps.items())
            )

        self._stack.push_async_callback(step)

    def callback(self, callback: Callable[..., Any], *args: Any) -> None:
        """A plain call when stopping (no waiting, no deadline)."""
        self._stack.callback(callback, *args)

    async def __aenter__(self) -> Lifecycle:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        return await self._stack.__aexit__(exc_type, exc, traceback)
