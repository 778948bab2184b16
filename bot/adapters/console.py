"""A terminal adapter: type /status, get answers. Works with a TTY and with piped stdin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

from bot.adapters.console_render import render_reply
from bot.core.commands import Actor
from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.pipeline import CommandPipeline, Line, Origin
from bot.core.textcommand import MAX_LINE_LENGTH
from bot.core.timeutil import Clock
from bot.services.deps import AppDeps

log = logging.getLogger(__name__)

QUIT_WORDS = frozenset({"quit", "exit", "/quit", "/exit"})
CONSOLE_ORIGIN = Origin(
    actor=Actor(platform="console", user_id=UserId("console"), display_name="you", is_admin=True),
    community_id=CommunityId("console"),
    channel_id=ChannelId("console"),
)
"""Whoever types at the terminal runs the bot, so they are its admin."""
_TOO_LONG = object()
_EOF = object()


class ConsoleAdapter:
    """Reads command lines from a byte stream and writes rendered replies."""

    name = "console"

    def __init__(
        self,
        *,
        deps: AppDeps,
        clock: Clock,
        stdin: BinaryIO,
        write: Callable[[str], None],
        on_quit: Callable[[], None],
    ) -> None:
        self._pipeline = CommandPipeline(deps.registry, deps, clock)
        self._clock = clock
        self._stdin = stdin
        self._write = write
        self._on_quit = on_quit
        self._task: asyncio.Task[None] | None = None

    @property
    def ready(self) -> bool:
        """The terminal is always there."""
        return True

    async def start(self) -> None:
        """Begin the read-eval-print loop in the background."""
        self._task = asyncio.create_task(self.run(), name="console")

    async def stop(self) -> None:
        """Stop reading (the reader thread is a daemon and dies with the process)."""
        if self._task and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        """Serve lines until quit or end of input."""
        lines: asyncio.Queue[object] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=_read_lines, args=(self._stdin, loop, lines), name="console-stdin", daemon=True
        ).start()
        self._write("outagebot console — type /status, /status <service>, help or quit.\n")
        while True:
            item = await lines.get()
            if item is _EOF:
                break
            if item is _TOO_LONG:
                self._write(f"That line is too long (at most {MAX_LINE_LENGTH} characters).\n")
                continue
            line = str(item).strip()
            if not line:
                continue
            if line.casefold() in QUIT_WORDS:
                self._write("Bye.\n")
                break
            self._write(await self.answer(line) + "\n")
        self._on_quit()

    async def answer(self, line: str) -> str:
        """The rendered reply to one command line."""
        reply = await self._pipeline.answer(Line(line), CONSOLE_ORIGIN)
        return render_reply(reply, self._clock())


def _read_lines(
    stream: BinaryIO, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[object]
) -> None:
    # A thread, because asyncio cannot read a redirected regular file, and a daemon one, so a
    # pending read never holds up shutdown.
    limit = MAX_LINE_LENGTH * 4 + 1
    reader = _FdLines(stream)
    try:
        while True:
            raw = reader.readline(limit)
            if not raw:
                break
            if len(raw) >= limit and not raw.endswith(b"\n"):
                while (chunk := reader.readline(limit)) and not chunk.endswith(b"\n"):
                    pass
                loop.call_soon_threadsafe(queue.put_nowait, _TOO_LONG)
                continue
            loop.call_soon_threadsafe(queue.put_nowait, raw.decode("utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        log.warning("console input closed: %s", exc)
    finally:
        # The loop may already be closed; then nobody is left to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, _EOF)


class _FdLines:
    """Lines read with ``os.read`` on the stream's file descriptor, bypassing its buffer.

    The daemon reader thread is still blocked in a read when the process exits. Blocked in
    ``sys.stdin.buffer.readline`` it would hold the buffer's lock, and the interpreter, flushing
    stdin at exit, aborts ("Fatal Python error: _enter_buffered_busy", exit 134). ``os.read``
    holds no lock. Streams without a descriptor (in-memory ones) are read as they are."""

    CHUNK = 65536

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        try:
            self._fd: int | None = stream.fileno()
        except (OSError, ValueError, AttributeError):  # io.BytesIO has no descriptor
            self._fd = None
        self._pending = b""
        self._ended = False

    def readline(self, limit: int) -> bytes:
        """Up to ``limit`` bytes, through the next newline; b"" at end of input."""
        if self._fd is None:
            return self._stream.readline(limit)
        while b"\n" not in self._pending and len(self._pending) < limit and not self._ended:
            chunk = os.read(self._fd, self.CHUNK)
            self._ended = not chunk
            self._pending += chunk
        end = self._pending.find(b"\n") + 1 or len(self._pending)
        end = min(end, limit)
        line, self._pending = self._pending[:end], self._pending[end:]
        return line
