"""A PlatformSender for FakeChatPlatform: what a real adapter's sender does, minus the platform."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp

from bot.adapters.console_render import render_reply
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.delivery.render_once import RenderOnce
from bot.delivery.sender import (
    ChannelRef,
    PermanentDeliveryError,
    SentMessage,
    TransientDeliveryError,
)

PLATFORM = "fakechat"


class HttpChatSender:
    platform = PLATFORM

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._http = session
        self._base = base_url
        self._rendered: RenderOnce[str] = RenderOnce(lambda: datetime.now(UTC))

    async def _call(
        self, method: str, path: str, payload: dict[str, str] | None = None
    ) -> dict[str, str] | None:
        try:
            async with self._http.request(method, self._base + path, json=payload) as response:
                if response.status == 404 and method == "GET":
                    return None
                if response.status == 404:
                    raise PermanentDeliveryError("unknown message")
                if response.status >= 400:
                    raise TransientDeliveryError(f"HTTP {response.status}")
                data: dict[str, str] = await response.json()
                return data
        except aiohttp.ClientError as exc:
            raise TransientDeliveryError(type(exc).__name__) from exc

    def _text(self, reply: Reply) -> str:
        """Rendered once for every channel that shows the same reply, as the adapters do."""
        return self._rendered.get(reply, None, lambda now: render_reply(reply, now))

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        data = await self._call(
            "POST",
            f"/channels/{channel.channel_id}/messages",
            {"key": key, "text": self._text(reply)},
        )
        assert data is not None
        return SentMessage(message_id=data["id"])

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        await self._call(
            "PATCH",
            f"/channels/{channel.channel_id}/messages/{message.message_id}",
            {"text": self._text(reply)},
        )

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        path = f"/channels/{channel.channel_id}/messages/{message.message_id}/replies"
        data = await self._call("POST", path, {"key": key, "text": self._text(reply)})
        assert data is not None
        return SentMessage(message_id=data["id"], thread_id=data["thread"])

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        async with self._http.get(
            self._base + f"/channels/{channel.channel_id}/messages", params={"key": key}
        ) as response:
            if response.status == 404:
                return None
            if response.status >= 400:
                raise TransientDeliveryError(f"HTTP {response.status}")
            data = await response.json()
            return SentMessage(message_id=data["id"])
