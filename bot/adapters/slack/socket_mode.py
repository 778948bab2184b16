"""Socket Mode: Slack pushes envelopes over a websocket, so no public URL is needed.

slack_sdk's aiohttp client asks ``apps.connections.open`` (on the Web API base URL, so a fake Web
API can hand out a ``ws://`` URL) for the websocket address, then reconnects on its own. Each
envelope goes through the same bolt app as HTTP requests, and is acked with bolt's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.app import SlackCommandApp

log = logging.getLogger(__name__)


class SlackSocketMode:
    """Connects with the app-level token (``xapp-…``) and serves envelopes until stopped."""

    def __init__(
        self,
        *,
        app: SlackCommandApp,
        app_token: str,
        client: AsyncWebClient,
        ping_interval: float = 10.0,
    ) -> None:
        if not app_token.startswith("xapp-"):
            raise ValueError("SLACK_APP_TOKEN must be an app-level token (xapp-…)")
        self._app = app
        self._app_token = app_token
        self._client = client
        self._ping_interval = ping_interval
        self._handler: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Begin connecting in the background (the client retries until Slack answers)."""
        # The client opens an aiohttp session and tasks when built: only inside the loop.
        self._handler = AsyncSocketModeHandler(
            self._app.bolt,
            app_token=self._app_token,
            web_client=self._client,
            ping_interval=self._ping_interval,
        )
        self._connecting = asyncio.create_task(self._connect(), name="slack-socket-mode")

    @property
    def connected(self) -> bool:
        """Whether the WebSocket to Slack is open right now."""
        session = self._handler.client.current_session if self._handler is not None else None
        return session is not None and not session.closed

    async def _connect(self) -> None:
        if self._handler is None:
            return
        await self._handler.connect_async()  # type: ignore[no-untyped-call]
        log.info("Slack Socket Mode connected")

    async def stop(self) -> None:
        """Disconnect and release the client's session and tasks; safe to call twice."""
        handler, self._handler = self._handler, None
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connecting
        if handler is None:
            return
        client = handler.client
        await handler.close_async()  # type: ignore[no-untyped-call]
        pending: list[Any] = [
            task
            for task in (
                client.message_processor,
                client.current_session_monitor,
                client.message_receiver,
            )
            if task is not None
        ]
        await asyncio.gather(*pending, return_exceptions=True)
