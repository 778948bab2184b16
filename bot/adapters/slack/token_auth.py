"""The bot token's own workspace, asked of Slack (``auth.test``) at start-up, never in an ack.

Slack wants every request acknowledged within 3 seconds. bolt authorizes a request before its
listener can ack, so an ``auth.test`` made there (on the first request, or on every one) spends
that budget on Slack's own latency. `TokenAuthorization` asks once at start-up, in the
background, retrying until Slack answers; until then a request gets a provisional answer (the
token, no workspace yet) so the ack goes out at once, and the work after the ack waits for the
real answer (`settled`) before deciding whether the workspace is ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class TokenAuthorization:
    """bolt's ``authorize`` for a single workspace (``SLACK_BOT_TOKEN``), warmed up at start."""

    def __init__(self, client: AsyncWebClient, *, sleep: Sleep = asyncio.sleep) -> None:
        self._client = client
        self._sleep = sleep
        self._result: AuthorizeResult | None = None
        self._provisional = AuthorizeResult(
            enterprise_id=None, team_id=None, bot_token=client.token
        )
        self._fetching: asyncio.Task[AuthorizeResult] | None = None

    def warm_up(self) -> None:
        """Start asking ``auth.test`` in the background (at start-up); returns at once."""
        if self._result is None and self._fetching is None:
            self._fetching = asyncio.create_task(self._fetch(), name="slack-auth-test")

    @property
    def authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """What bolt calls per request: the known answer, or at once a provisional one."""

        # A plain function: bolt passes arguments by the names it finds, ``self`` included.
        async def authorize(enterprise_id: str | None, team_id: str | None) -> AuthorizeResult:
            if self._result is not None:
                return self._result
            self.warm_up()
            return self._provisional

        return authorize

    def is_provisional(self, result: AuthorizeResult | None) -> bool:
        """Whether ``result`` was handed out before Slack said which workspace the token is."""
        return result is self._provisional

    async def settled(self) -> AuthorizeResult:
        """The real answer, waiting for ``auth.test`` if it is still on its way."""
        self.warm_up()
        if self._result is not None:
            return self._result
        assert self._fetching is not None
        return await asyncio.shield(self._fetching)

    async def close(self) -> None:
        """Stop asking (at shutdown)."""
        fetching, self._fetching = self._fetching, None
        if fetching is not None and not fetching.done():
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetching

    async def _fetch(self) -> AuthorizeResult:
        delay = FIRST_RETRY_SECONDS
        while True:
            try:
                response = await self._client.auth_test()
            except Exception as exc:  # Slack down or slow, or a bad token: say so, keep asking
                log.warning(
                    "Slack auth.test failed (%s); trying again in %.0f s", _reason(exc), delay
                )
                await self._sleep(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
                continue
            self._result = AuthorizeResult.from_auth_test_response(
                bot_token=self._client.token, auth_test_response=response
            )
            log.info("Slack bot token belongs to workspace %s", self._result.team_id)
            return self._result


def _reason(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "error")
    return type(exc).__name__
