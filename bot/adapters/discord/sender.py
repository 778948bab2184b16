"""Outbox delivery to Discord over its REST API: send, edit, reply in a thread, find a lost send.

Plain aiohttp against ``DISCORD_API_BASE`` rather than discord.py's HTTP client, because the
outbox worker, not the library, decides when to retry: discord.py would sleep through a 429
itself, holding a worker slot and hiding the wait. Here a 429 or 5xx becomes
`TransientDeliveryError` (with the platform's retry-after), and a missing channel or permission
becomes `PermanentDeliveryError`. Creates carry a nonce derived from the delivery key with
``enforce_nonce``, so Discord itself drops a duplicate sent after a crash or a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import aiohttp

from bot.adapters.discord.render import IMAGE_NAME, DiscordMessage, render_reply
from bot.core.commands import Reply
from bot.core.mention import Mention
from bot.core.timeutil import Clock
from bot.delivery.render_once import RenderOnce
from bot.delivery.retry_after import parse_retry_after
from bot.delivery.sender import (
    ChannelRef,
    PayloadRejectedError,
    PermanentDeliveryError,
    SentMessage,
    TransientDeliveryError,
)

log = logging.getLogger(__name__)

FORUM_TYPES = frozenset({15, 16})  # forum and media channels: every message lives in a post
PERMANENT_CODES = frozenset({10003, 10008, 50001, 50013, 50083})
THREAD_ALREADY_EXISTS = 160004
SCAN_LIMIT = 50
FORUM_SCAN_LIMIT = 50  # starter messages read one request each; bounds a recovery's cost
NOT_A_TEXT_CHANNEL = 50008  # "Cannot send messages in a non-text channel" (e.g. a forum)
GLOBAL_RATE_PER_SECOND = 47  # Discord allows 50/s per bot; a little headroom avoids 429s
_MESSAGE_ID = re.compile(r"/messages/\d+")


def nonce_for(key: str) -> str:
    """A Discord nonce (≤ 25 characters) derived from a delivery key."""
    return "ob" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:23]


def marker_for(key: str) -> str:
    """What the embed footer carries so `find_sent` can recognise the message later."""
    return "ref " + nonce_for(key)[2:12]


MARKER_SLOT = marker_for("")
"""Stands for the delivery's marker in a rendering shared by several channels: every marker has
its length, so the embed is fitted exactly as with the channel's own (`with_marker`)."""


def with_marker(message: DiscordMessage, marker: str) -> DiscordMessage:
    """A rendering made with `MARKER_SLOT`, with ``marker`` in its place at the footer's end."""
    embed = message.embed.copy()
    footer = embed.footer.text or ""
    embed.set_footer(text=footer[: -len(MARKER_SLOT)] + marker, icon_url=embed.footer.icon_url)
    return replace(message, embed=embed)


class GlobalRateLimiter:
    """At most ``rate`` requests in any second, for this process (Discord's per-bot limit)."""

    def __init__(
        self,
        rate: int = GLOBAL_RATE_PER_SECOND,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = rate
        self._monotonic = monotonic
        self._sleep = sleep
        self._sent: deque[float] = deque()

    async def acquire(self) -> None:
        """Wait for a free slot in the one-second window."""
        while True:
            now = self._monotonic()
            while self._sent and now - self._sent[0] >= 1.0:
                self._sent.popleft()
            if len(self._sent) < self._rate:
                self._sent.append(now)
                return
            await self._sleep(1.0 - (now - self._sent[0]))


class DiscordSender:
    """`PlatformSender` for Discord."""

    platform = "discord"

    def __init__(
        self,
        *,
        token: str,
        api_base: str,
        session: aiohttp.ClientSession,
        clock: Clock,
        limiter: GlobalRateLimiter | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base = api_base.rstrip("/")
        self._headers = {"Authorization": f"Bot {token}", "User-Agent": "outagebot (+discord)"}
        self._session = session
        self._clock = clock
        self._limiter = limiter or GlobalRateLimiter(monotonic=monotonic)
        self._monotonic = monotonic
        self._blocked_until: dict[str, float] = {}
        self._channel_types: dict[str, int] = {}
        self._channel_guilds: dict[str, str] = {}
        self._rendered: RenderOnce[DiscordMessage] = RenderOnce(clock)

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        """Post a new message (a new post in a forum channel)."""
        message = self._render(reply, key=key, mention_role=mention_role)
        body = message.payload() | {"nonce": nonce_for(key), "enforce_nonce": True}
        if self._channel_types.get(channel.channel_id) not in FORUM_TYPES:
            # Post straight away (one request per message, not two); a forum channel refuses
            # with NOT_A_TEXT_CHANNEL, and is then remembered as one.
            try:
                created = await self._request(
                    "POST", f"/channels/{channel.channel_id}/messages", body, message
                )
                return SentMessage(message_id=str(created["id"]))
            except PermanentDeliveryError as exc:
                if f"code {NOT_A_TEXT_CHANNEL}" not in str(exc):
                    raise
            if await self._channel_type(channel.channel_id) not in FORUM_TYPES:
                raise PermanentDeliveryError("Discord: this channel cannot hold messages")
        name = (reply.title or "Status update")[:100]
        post = await self._request(
            "POST",
            f"/channels/{channel.channel_id}/threads",
            {"name": name, "message": body},
            message,
        )
        return SentMessage(message_id=str(post["message"]["id"]), thread_id=str(post["id"]))

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        """Replace a message's embed and buttons (the role mention is not repeated)."""
        rendered = self._render(reply, key=None, mention_role=None)
        body = rendered.payload()
        del body["content"]  # keep the original mention line as it was
        target = channel.channel_id
        if message.thread_id and await self._channel_type(target) in FORUM_TYPES:
            target = message.thread_id  # a forum post's starter message lives in its thread
        path = f"/channels/{target}/messages/{message.message_id}"
        await self._request("PATCH", path, body, rendered)

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        """Post under a message, starting its thread first when it has none."""
        thread_id = message.thread_id or await self._start_thread(channel, message, reply)
        rendered = self._render(reply, key=key, mention_role=None)
        body = rendered.payload() | {"nonce": nonce_for(key), "enforce_nonce": True}
        created = await self._request("POST", f"/channels/{thread_id}/messages", body, rendered)
        return SentMessage(message_id=str(created["id"]), thread_id=thread_id)

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        """Our message with this key among the recent ones of the channel, or of a thread."""
        where = thread_id or channel.channel_id
        if thread_id is None and await self._channel_type(where) in FORUM_TYPES:
            return await self._find_forum_post(where, key)
        try:
            recent = await self._request(
                "GET", f"/channels/{where}/messages?limit={SCAN_LIMIT}", None, None
            )
        except PermanentDeliveryError:
            if thread_id is None:
                raise
            return None  # no such thread yet: nothing was replied there
        nonce, marker = nonce_for(key), marker_for(key)
        for item in recent:
            if item.get("nonce") == nonce or _footer(item).endswith(marker):
                return SentMessage(message_id=str(item["id"]))
        return None

    async def _find_forum_post(self, forum_id: str, key: str) -> SentMessage | None:
        # Forum posts are threads; no endpoint lists a forum's posts, so read the guild's active
        # threads and check the starter message (same id as its thread) of the newest ones.
        guild_id = self._channel_guilds.get(forum_id)
        if guild_id is None:
            return None
        listing = await self._request("GET", f"/guilds/{guild_id}/threads/active", None, None)
        threads = listing.get("threads") if isinstance(listing, dict) else None
        posts = sorted(
            (str(t["id"]) for t in threads or [] if str(t.get("parent_id")) == forum_id),
            key=int,
            reverse=True,  # snowflakes grow with time: a post lost in a crash is among the newest
        )
        marker = marker_for(key)
        for post_id in posts[:FORUM_SCAN_LIMIT]:
            try:
                starter = await self._request(
                    "GET", f"/channels/{post_id}/messages/{post_id}", None, None
                )
            except PermanentDeliveryError:
                continue  # starter message deleted, or the post closed meanwhile
            if _footer(starter).endswith(marker):
                return SentMessage(message_id=post_id, thread_id=post_id)
        return None

    def _render(
        self, reply: Reply, *, key: str | None, mention_role: Mention | None
    ) -> DiscordMessage:
        """The reply as Discord shows it: rendered once for every channel that shows it with
        the same mention, then given this delivery's marker."""
        marked = key is not None
        shared = self._rendered.get(
            reply,
            (marked, mention_role),
            lambda now: render_reply(
                reply, now, mention=mention_role, marker=MARKER_SLOT if marked else None
            ),
        )
        return with_marker(shared, marker_for(key)) if key is not None else shared

    async def _start_thread(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> str:
        name = (reply.title or "Updates")[:100]
        path = f"/channels/{channel.channel_id}/messages/{message.message_id}/threads"
        try:
            thread = await self._request(
                "POST", path, {"name": name, "auto_archive_duration": 1440}, None
            )
        except PermanentDeliveryError as exc:
            if f"code {THREAD_ALREADY_EXISTS}" in str(exc):
                return message.message_id  # a thread started from a message has its id
            raise
        return str(thread["id"])

    async def _channel_type(self, channel_id: str) -> int:
        known = self._channel_types.get(channel_id)
        if known is None:
            data = await self._request("GET", f"/channels/{channel_id}", None, None)
            known = self._channel_types[channel_id] = int(data.get("type", 0))
            if data.get("guild_id"):
                self._channel_guilds[channel_id] = str(data["guild_id"])
        return known

    async def _request(
        self, method: str, path: str, body: Any, message: DiscordMessage | None
    ) -> Any:
        bucket = f"{method} {_MESSAGE_ID.sub('/messages/:id', path.split('?')[0])}"
        wait = self._blocked_until.get(bucket, 0.0) - self._monotonic()
        if wait > 0:
            # Rounded up to the millisecond: a retry scheduled a hair too early (clock rounding)
            # would otherwise come back, find the bucket still closed, and spin.
            raise TransientDeliveryError(
                f"Discord bucket {bucket} exhausted",
                retry_after=math.ceil(wait * 1000) / 1000,
                rate_limited=True,
            )
        await self._limiter.acquire()
        kwargs: dict[str, Any] = {"headers": self._headers}
        if message is not None and message.image_png is not None:
            form = aiohttp.FormData()
            form.add_field("payload_json", json.dumps(body), content_type="application/json")
            form.add_field(
                "files[0]", message.image_png, filename=IMAGE_NAME, content_type="image/png"
            )
            kwargs["data"] = form
        elif body is not None:
            kwargs["json"] = body
        try:
            async with self._session.request(method, self._base + path, **kwargs) as response:
                self._note_bucket(bucket, response.headers)
                text = await response.text()
                status = response.status
                headers = response.headers
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientDeliveryError(f"Discord {method} {bucket}: {exc!r}") from exc
        data = _decode(text)
        if status < 300:
            return data
        code = data.get("code") if isinstance(data, dict) else None
        where = f"Discord {method} {bucket}: HTTP {status} code {code}"
        if status == 429:
            retry_after = _retry_after(data, headers, self._clock())
            if isinstance(data, dict) and data.get("global"):
                log.warning("Discord global rate limit hit; retry after %.1f s", retry_after)
            raise TransientDeliveryError(where, retry_after=retry_after, rate_limited=True)
        if status >= 500:
            raise TransientDeliveryError(where)
        if status in (401, 403, 404) or code in PERMANENT_CODES or code == NOT_A_TEXT_CHANNEL:
            raise PermanentDeliveryError(where)
        if status in (400, 413):  # our payload: Discord says which part (no secret in it)
            errors = data.get("errors") if isinstance(data, dict) else None
            detail = json.dumps(errors, separators=(",", ":"))[:300] if errors else text[:300]
            raise PayloadRejectedError(f"{where}: {detail}")
        log.error("%s: %s", where, text[:500])
        raise PermanentDeliveryError(where)

    def _note_bucket(self, bucket: str, headers: Any) -> None:
        if headers.get("X-RateLimit-Remaining") == "0":
            reset_after = parse_retry_after(headers.get("X-RateLimit-Reset-After"))
            if reset_after:
                self._blocked_until[bucket] = self._monotonic() + reset_after


def _retry_after(data: Any, headers: Any, now: datetime) -> float:
    candidates = [
        parse_retry_after(data.get("retry_after")) if isinstance(data, dict) else None,
        parse_retry_after(headers.get("X-RateLimit-Reset-After")),
        parse_retry_after(headers.get("Retry-After"), now=now),
    ]
    return next((c for c in candidates if c is not None), 1.0)


def _footer(message: Any) -> str:
    embeds = message.get("embeds") if isinstance(message, dict) else None
    footer = (embeds or [{}])[0].get("footer") or {}
    text = footer.get("text", "")
    return text if isinstance(text, str) else ""


def _decode(text: str) -> Any:
    try:
        return json.loads(text) if text else {}
    except ValueError:
        return {}
