"""Multi-workspace installs: ``GET /slack/install`` and ``GET /slack/oauth_redirect``.

Built from slack_sdk's pieces (`AuthorizeUrlGenerator`, ``oauth.v2.access`` on the Web API
client, the async installation and state store interfaces implemented on our database in
`bot.store.slack_install_store`). The state is signed (nothing is stored to issue one),
single-use, expires, and is also set as a cookie on the browser that started the install, so a
redirect link sent to someone else does nothing, not even cancel that install.
Every outcome is a short HTML page; nothing is stored unless Slack confirmed the code.
"""

from __future__ import annotations

import hmac
import html
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from aiohttp import web
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.oauth import AuthorizeUrlGenerator
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.web.async_client import AsyncWebClient

from bot.store.slack_install_store import STATE_TTL, SlackInstallationStore, SlackOAuthStateStore

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
STATE_COOKIE = "outagebot_slack_state"
AUTHORIZE_URL = "https://slack.com/oauth/v2/authorize"

Authorize = Callable[..., Awaitable[AuthorizeResult]]


def workspace_authorize(
    installations: SlackInstallationStore, fallback: Authorize | None = None
) -> Authorize:
    """Authorize each request with the bot token of the workspace it comes from.

    A workspace without an install gets an empty result (no token): the listener then tells the
    user plainly that it is not connected. With ``SLACK_BOT_TOKEN`` also set, its own workspace
    (``fallback``, the single-workspace authorize) keeps working without an install row.
    """

    async def authorize(
        enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> AuthorizeResult:
        bot = await installations.async_find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is not None:
            return AuthorizeResult(
                enterprise_id=bot.enterprise_id,
                team_id=bot.team_id if not bot.is_enterprise_install else team_id,
                bot_token=bot.bot_token,
                bot_id=bot.bot_id,
                bot_user_id=bot.bot_user_id,
                bot_scopes=bot.bot_scopes,
                user_id=user_id,
            )
        if fallback is not None:
            return await fallback(enterprise_id=enterprise_id, team_id=team_id)
        return AuthorizeResult(enterprise_id=None, team_id=None)

    return authorize


class SlackOAuth:
    """The two install routes."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        scopes: Sequence[str],
        client: AsyncWebClient,
        installations: SlackInstallationStore,
        states: SlackOAuthStateStore,
        authorization_url: str = AUTHORIZE_URL,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._client = client
        self._installations = installations
        self._states = states
        self._urls = AuthorizeUrlGenerator(
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=list(scopes),
            authorization_url=authorization_url,
        )
        self._secure_cookie = redirect_uri.startswith("https://")

    def install(self, web_app: web.Application) -> None:
        """Mount both routes (before the application starts)."""
        web_app.router.add_get(INSTALL_PATH, self.start)
        web_app.router.add_get(REDIRECT_PATH, self.finish)

    async def start(self, request: web.Request) -> web.StreamResponse:
        """Issue a state and send the browser to Slack's consent screen."""
        # Signed, not stored: a flood of these costs nothing and crowds out no one.
        state = await self._states.async_issue()
        response = web.Response(status=302, headers={"Location": self._urls.generate(state)})
        response.set_cookie(
            STATE_COOKIE,
            state,
            max_age=int(STATE_TTL.total_seconds()),
            path=REDIRECT_PATH,
            httponly=True,
            secure=self._secure_cookie,
            samesite="Lax",
        )
        return response

    async def finish(self, request: web.Request) -> web.StreamResponse:
        """Check the state, trade the code for a bot token, store the install."""
        query = request.query
        state = query.get("state", "")
        cookie = request.cookies.get(STATE_COOKIE, "")
        same_browser = bool(state) and hmac.compare_digest(cookie.encode(), state.encode())
        if query.get("error"):
            # The user pressed Cancel on Slack's screen: keep nothing. Only the browser that
            # started the install spends its state; a forged cancel link must not.
            if same_browser:
                await self._states.async_consume(state)
            return _done(page("Install cancelled", "Nothing was installed.", 200))
        if not same_browser or not await self._states.async_consume(state):
            return _done(
                page(
                    "This install link has expired",
                    "It was already used, is too old, or was opened in another browser. "
                    f'<a href="{INSTALL_PATH}">Start the install again</a>.',
                    400,
                    raw=True,
                )
            )
        code = query.get("code", "")
        if not code or len(code) > 500:
            return _done(page("Install failed", "Slack sent no install code. Try again.", 400))
        try:
            installation = await self._exchange(code)
            await self._installations.async_save(installation)
        except (SlackApiError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("Slack install failed: %s", _reason(exc))
            return _done(
                page("Install failed", "Slack did not confirm the install. Please try again.", 400)
            )
        except Exception:
            log.exception("Slack install failed")
            return _done(page("Install failed", "Something went wrong on our side.", 500))
        log.info("Slack workspace %s installed outagebot", installation.team_id)
        name = installation.team_name or installation.enterprise_name or "your workspace"
        return _done(
            page(
                "outagebot is installed",
                f"It now answers in {name}. Type /outage help in any channel.",
                200,
            )
        )

    async def _exchange(self, code: str) -> Installation:
        # The credentials go in the form body (Slack accepts either): slack_sdk's
        # oauth_v2_access sends them as aiohttp.BasicAuth, deprecated in aiohttp.
        answer = await self._client.api_call(
            "oauth.v2.access",
            data={
                "client_id": self._client_id,
                "client_secret": self._client_secret,
                "code": code,
                "redirect_uri": self._redirect_uri,
            },
        )
        bot_token = _str(answer.get("access_token"))
        if not bot_token.startswith("xoxb-"):
            raise ValueError("oauth.v2.access gave no bot token")
        identity = await self._client.auth_test(token=bot_token)
        team: dict[str, Any] = answer.get("team") or {}
        enterprise: dict[str, Any] = answer.get("enterprise") or {}
        installer: dict[str, Any] = answer.get("authed_user") or {}
        return Installation(
            app_id=_str(answer.get("app_id")) or None,
            enterprise_id=_str(enterprise.get("id")) or None,
            enterprise_name=_str(enterprise.get("name")) or None,
            team_id=_str(team.get("id")) or None,
            team_name=_str(team.get("name")) or None,
            bot_token=bot_token,
            bot_id=_str(identity.get("bot_id")) or None,
            bot_user_id=_str(answer.get("bot_user_id")) or None,
            bot_scopes=_str(answer.get("scope")),
            user_id=_str(installer.get("id")),
            is_enterprise_install=bool(answer.get("is_enterprise_install")),
        )


def page(title: str, message: str, status: int, *, raw: bool = False) -> web.Response:
    """A small HTML page; ``message`` is escaped unless it is our own markup (``raw``)."""
    body = message if raw else html.escape(message)
    text = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        f"<title>{html.escape(title)}</title>"
        '<body style="font-family:system-ui,sans-serif;max-width:32em;margin:4em auto">'
        f"<h1>{html.escape(title)}</h1><p>{body}</p></body></html>"
    )
    return web.Response(text=text, status=status, content_type="text/html")


def _done(response: web.Response) -> web.Response:
    response.del_cookie(STATE_COOKIE, path=REDIRECT_PATH)
    return response


def _str(value: object) -> str:
    return value[:300] if isinstance(value, str) else ""


def _reason(exc: Exception) -> str:
    # Never the response itself: it may echo the code or a token.
    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        return str(data.get("error")) if isinstance(data, dict) else "Slack API error"
    return type(exc).__name__
