"""A minimal chat platform on loopback, for crash tests: it never deduplicates anything itself.

Messages carry the sender's key as metadata (like Slack message metadata), and
``GET /channels/{id}/messages?key=`` finds one, which is what `find_sent` relies on.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from aiohttp import web


@dataclass
class Message:
    id: str
    channel: str
    key: str
    text: str
    edits: int = 0
    replies: list[str] = field(default_factory=list)


class FakeChatPlatform:
    """Records every post, edit and reply; `wait_for_requests` lets tests act at a chosen point."""

    def __init__(self) -> None:
        self.messages: dict[str, Message] = {}
        self.requests = 0
        self._ids = itertools.count(1)
        self._arrivals = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/channels/{channel}/messages", self._post)
        app.router.add_get("/channels/{channel}/messages", self._find)
        app.router.add_patch("/channels/{channel}/messages/{message}", self._edit)
        app.router.add_post("/channels/{channel}/messages/{message}/replies", self._reply)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait_for_requests(self, count: int) -> None:
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: self.requests >= count)

    async def _arrived(self) -> None:
        async with self._arrivals:
            self.requests += 1
            self._arrivals.notify_all()

    def posts_per_channel(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for message in self.messages.values():
            if message.key.startswith("post:"):
                counts[message.channel] = counts.get(message.channel, 0) + 1
        return counts

    async def _post(self, request: web.Request) -> web.Response:
        await self._arrived()
        data = await request.json()
        message = Message(
            str(next(self._ids)), request.match_info["channel"], data["key"], data["text"]
        )
        self.messages[message.id] = message
        return web.json_response({"id": message.id})

    async def _find(self, request: web.Request) -> web.Response:
        await self._arrived()
        key = request.query.get("key", "")
        channel = request.match_info["channel"]
        for message in self.messages.values():
            if message.key == key and message.channel == channel:
                return web.json_response({"id": message.id})
        return web.json_response({"error": "not found"}, status=404)

    async def _edit(self, request: web.Request) -> web.Response:
        await self._arrived()
        message = self.messages.get(request.match_info["message"])
        if message is None:
            return web.json_response({"error": "unknown message"}, status=404)
        message.text = (await request.json())["text"]
        message.edits += 1
        return web.json_response({"id": message.id})

    async def _reply(self, request: web.Request) -> web.Response:
        await self._arrived()
        parent = self.messages.get(request.match_info["message"])
        if parent is None:
            return web.json_response({"error": "unknown message"}, status=404)
        data = await request.json()
        reply = Message(str(next(self._ids)), parent.channel, data["key"], data["text"])
        self.messages[reply.id] = reply
        parent.replies.append(reply.id)
        return web.json_response({"id": reply.id, "thread": parent.id})
