"""The outbox's Slack side: post, edit, reply in a thread, and find what we already posted.

Every message carries Slack message metadata ``outagebot_alert`` with the delivery key, so after
a crash between posting and recording, `find_sent` can spot our message in the channel's recent
history instead of posting it twice. Slack errors become the worker's two kinds: retry later
(rate limits, 5xx, network) or give up on this channel (gone, archived, not allowed, bad token).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.adapters.slack.render import SlackMessage, render_reply
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
from bot.store.slack_install_store import SlackInstallationStore

log = logging.getLogger(__name__)

EVENT_TYPE = "outagebot_alert"
HISTORY_LIMIT = 100
DEFAULT_RETRY_AFTER = 1.0

PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "invalid_auth",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_authed",
        "missing_scope",
        "no_permission",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "team_access_not_granted",
        "ekm_access_denied",
        "org_login_required",
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "thread_not_found",
    }
)
PAYLOAD_ERRORS = frozenset(
    {
        "msg_too_long",
        "no_text",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "invalid_arguments",
    }
)
"""Slack refused the message we built: our bug, not the channel's (`PayloadRejectedError`)."""
NOT_INSTALLED = "Slack: outagebot is not installed in this workspace (or was removed)"
MAX_CLIENTS = 1000


class SlackSender:
    """`PlatformSender` for Slack: one workspace's bot token, or each workspace's own install.

    With ``installations`` (multi-workspace installs), a channel is posted to with the token of
    the workspace its subscription belongs to (``ChannelRef.community_id`` is the team id). A
    workspace with no install falls back to ``client``'s own token when it has one
    (``SLACK_BOT_TOKEN``), and otherwise fails for good: retrying cannot bring a token back.
    """

    platform = "slack"

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        clock: Clock,
        history_limit: int = HISTORY_LIMIT,
        installations: SlackInstallationStore | None = None,
    ) -> None:
        self._default = client
        self._clock = clock
        self._history_limit = history_limit
        self._installations = installations
        self._clients: dict[str, AsyncWebClient] = {}
        self._rendered: RenderOnce[SlackMessage] = RenderOnce(clock)

    def _render(self, reply: Reply, mention: Mention | None) -> SlackMessage:
        """Block Kit for the reply, rendered once for every channel that shows it with the same
        mention (nothing else in it is the channel's: the key goes in metadata, beside it)."""
        return self._rendered.get(
            reply, mention, lambda now: render_reply(reply, now, mention=mention)
        )

    async def _client_for(self, channel: ChannelRef) -> AsyncWebClient:
        if self._installations is None:
            return self._default
        token = await self._installations.bot_token(channel.community_id)
        if token is None:
            if self._default.token:
                return self._default
            raise PermanentDeliveryError(NOT_INSTALLED)
        client = self._clients.get(token)
        if client is None:
            if len(self._clients) >= MAX_CLIENTS:
                self._clients.clear()  # old tokens of reinstalled workspaces; cheap to rebuild
            client = AsyncWebClient(
                token=token, base_url=self._default.base_url, timeout=self._default.timeout
            )
            client.retry_handlers = list(self._default.retry_handlers)
            self._clients[token] = client
        return client

    async def send(
        self, channel: ChannelRef, reply: Reply, *, key: str, mention_role: Mention | None = None
    ) -> SentMessage:
        """chat.postMessage with our metadata."""
        client = await self._client_for(channel)
        message = self._render(reply, mention_role)
        response = await _call(
            client.chat_postMessage,
            channel=channel.channel_id,
            text=message.text,
            blocks=message.blocks,
            metadata=_metadata(key),
            unfurl_links=False,
            unfurl_media=False,
        )
        return SentMessage(message_id=_ts(response))

    async def edit(self, channel: ChannelRef, message: SentMessage, reply: Reply) -> None:
        """chat.update of a message we posted."""
        client = await self._client_for(channel)
        rendered = self._render(reply, None)
        await _call(
            client.chat_update,
            channel=channel.channel_id,
            ts=message.message_id,
            text=rendered.text,
            blocks=rendered.blocks,
        )

    async def reply_in_thread(
        self, channel: ChannelRef, message: SentMessage, reply: Reply, *, key: str
    ) -> SentMessage:
        """chat.postMessage under the parent (a Slack thread is just the parent's ts)."""
        parent = message.thread_id or message.message_id
        client = await self._client_for(channel)
        rendered = self._render(reply, None)
        response = await _call(
            client.chat_postMessage,
            channel=channel.channel_id,
            thread_ts=parent,
            text=rendered.text,
            blocks=rendered.blocks,
            metadata=_metadata(key),
            unfurl_links=False,
            unfurl_media=False,
        )
        return SentMessage(message_id=_ts(response), thread_id=parent)

    async def find_sent(
        self, channel: ChannelRef, key: str, *, thread_id: str | None = None
    ) -> SentMessage | None:
        """Our message with this key among the channel's recent messages, or a thread's replies.

        Slack may answer a page with fewer messages than asked, so cursors are followed until
        ``history_limit`` messages have been looked at.
        """
        client = await self._client_for(channel)
        read, cursor = 0, ""
        while read < self._history_limit:
            page: dict[str, Any] = {
                "channel": channel.channel_id,
                "limit": self._history_limit - read,
                "include_all_metadata": True,
            }
            if cursor:
                page["cursor"] = cursor
            if thread_id is not None:
                response = await _call(client.conversations_replies, ts=thread_id, **page)
            else:
                response = await _call(client.conversations_history, **page)
            messages = response.get("messages")
            messages = messages if isinstance(messages, list) else []
            if (found := _with_key(messages, key)) is not None:
                return found
            read += len(messages)
            cursor = _next_cursor(response)
            if not messages or not cursor:
                return None
        return None


def _with_key(messages: list[Any], key: str) -> SentMessage | None:
    for item in messages:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(metadata, dict) or metadata.get("event_type") != EVENT_TYPE:
            continue
        payload = metadata.get("event_payload")
        if isinstance(payload, dict) and payload.get("key") == key and item.get("ts"):
            return SentMessage(message_id=str(item["ts"]))
    return None


def _next_cursor(response: AsyncSlackResponse) -> str:
    if not response.get("has_more"):
        return ""
    meta = response.get("response_metadata")
    cursor = meta.get("next_cursor") if isinstance(meta, dict) else None
    return cursor if isinstance(cursor, str) else ""


def _metadata(key: str) -> dict[str, Any]:
    return {"event_type": EVENT_TYPE, "event_payload": {"key": key}}


def _ts(response: AsyncSlackResponse) -> str:
    ts = response.get("ts")
    if not isinstance(ts, str) or not ts:
        raise TransientDeliveryError("Slack answered without a message ts")
    return ts


async def _call(
    method: Callable[..., Awaitable[AsyncSlackResponse]], **kwargs: Any
) -> AsyncSlackResponse:
    try:
        return await method(**kwargs)
    except SlackApiError as exc:
        raise classify(exc) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise TransientDeliveryError(f"Slack unreachable: {type(exc).__name__}") from exc


def classify(
    exc: SlackApiError,
) -> TransientDeliveryError | PermanentDeliveryError:
    """The worker's view of a Slack API error."""
    response = exc.response
    status = int(getattr(response, "status_code", 0) or 0)
    data = getattr(response, "data", None)
    error = str(data.get("error", "")) if isinstance(data, dict) else ""
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", None) or {}
        return TransientDeliveryError(
            "Slack rate limit",
            retry_after=parse_retry_after(headers.get("Retry-After")) or DEFAULT_RETRY_AFTER,
            rate_limited=True,
        )
    if error in PAYLOAD_ERRORS:
        details = data.get("errors") if isinstance(data, dict) else None
        detail = f" {str(details)[:300]}" if details else ""
        return PayloadRejectedError(f"Slack refused our message: {error}{detail}")
    if error in PERMANENT_ERRORS:
        return PermanentDeliveryError(f"Slack refused: {error}")
    if status >= 500:
        return TransientDeliveryError(f"Slack HTTP {status}")
    return TransientDeliveryError(f"Slack error: {error or status}")
