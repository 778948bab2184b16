"""The bolt app: one slash command carrying every command, ``ob:`` buttons, lifecycle events.

Both transports (HTTP and Socket Mode) end in this app's ``async_dispatch``. Every listener acks
at once and does the work in a task it tracks, then answers through ``respond``; so Slack gets its
acknowledgement well within 3 seconds however slow a command is, and shutdown can wait for (or
cancel) what is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import replace
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext, AsyncRespond
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.charts import SlackCharts
from bot.adapters.slack.identity import AdminLookup, SeenKeys
from bot.adapters.slack.render import (
    ACTION_PREFIX,
    FORM_PREFIX,
    MAX_URL,
    SlackMessage,
    form_return,
    render_form,
    render_reply,
    submitted_values,
)
from bot.adapters.slack.token_auth import TokenAuthorization
from bot.core.commands import Actor, CommandSpec, Reply, error_reply
from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.pipeline import CommandPipeline, Line, Origin, OriginFor, Source, Submission
from bot.core.timeutil import Clock
from bot.services.deps import AppDeps
from bot.store import slack_replay_store

log = logging.getLogger(__name__)

PLATFORM = "slack"
UNKNOWN_TEAM_TEXT = "This workspace is not connected to outagebot, so I can't answer here."
STARTING_TEXT = "I'm still connecting to Slack. Please try again in a minute."
SETTLE_SECONDS = 60.0
"""How long work after an ack waits for start-up's auth.test before giving up politely."""
MALFORMED_TEXT = "I couldn't tell who asked, so I can't answer that."
REPLAY_CHECK_SECONDS = 1.0
"""The database's share of Slack's 3-second ack budget for the replay check."""
Authorize = Callable[..., Awaitable[AuthorizeResult]]
Uninstall = Callable[[str], Awaitable[object]]


def _text(value: object, limit: int = 200) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _dig(body: Mapping[str, Any], *path: str) -> str:
    node: Any = body
    for key in path:
        node = node.get(key) if isinstance(node, Mapping) else None
    return _text(node)


def _header(req: AsyncBoltRequest, name: str) -> str:
    # bolt keeps each header as a list of values
    values = req.headers.get(name) or []
    return _text(values[0] if values else "")


def _retry_attempt(req: AsyncBoltRequest) -> int:
    """Which retry this is: 0 for a first delivery.

    Socket Mode envelopes carry ``retry_attempt: 0`` on every first delivery, which bolt turns
    into an ``x-slack-retry-num: 0`` header; only a positive number is a retry.
    """
    number = _header(req, "x-slack-retry-num").strip()
    return int(number) if number.isdigit() else 0


class SlackCommandApp:
    """Turns slash commands and button clicks into `Invocation`s and answers with Block Kit."""

    def __init__(
        self,
        *,
        deps: AppDeps,
        clock: Clock,
        client: AsyncWebClient,
        command: str = "/outage",
        admins: AdminLookup | None = None,
        authorize: Authorize | None = None,
        token_auth: TokenAuthorization | None = None,
        on_uninstall: Uninstall | None = None,
        charts: SlackCharts | None = None,
    ) -> None:
        self._deps = deps
        self._on_uninstall = on_uninstall
        self._charts = charts
        self._pipeline = CommandPipeline(deps.registry, deps, clock)
        self._clock = clock
        self._admins = admins or AdminLookup(clock=clock)
        self._seen = SeenKeys()
        self._tasks: set[asyncio.Task[None]] = set()
        self.command = "/" + command.strip().lstrip("/")
        if authorize is None:
            token_auth = token_auth or TokenAuthorization(client)
            authorize = token_auth.authorize
        self.token_auth = token_auth
        # Signatures are checked by our HTTP endpoint (with our clock) before anything reaches
        # bolt; Socket Mode needs none. Everything after the ack runs in our own tasks. An
        # explicit authorize keeps bolt from turning itself into an OAuth app when it finds
        # SLACK_CLIENT_ID/SECRET in the environment; the token rides on each request's client.
        self.bolt = AsyncApp(
            client=AsyncWebClient(base_url=client.base_url, timeout=client.timeout),
            authorize=authorize,
            signing_secret="",
            request_verification_enabled=False,
            process_before_response=True,
            raise_error_for_unhandled_request=False,
        )
        self.bolt.use(self._once_only)
        self.bolt.command(self.command)(self._on_command)
        self.bolt.action(re.compile("^" + re.escape(ACTION_PREFIX)))(self._on_button)
        self.bolt.action(re.compile(r"^oblink:"))(self._ack_only)
        self.bolt.view(re.compile("^" + re.escape(FORM_PREFIX)))(self._on_form)
        self.bolt.event("app_uninstalled")(self._on_lifecycle_event)
        self.bolt.event("tokens_revoked")(self._on_lifecycle_event)

    async def dispatch(self, request: AsyncBoltRequest) -> BoltResponse:
        """Hand one verified request to bolt."""
        return await self.bolt.async_dispatch(request)

    @property
    def pending(self) -> int:
        """Commands acknowledged but not yet answered."""
        return len(self._tasks)

    async def wait_idle(self) -> None:
        """Wait until every acknowledged command has been answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def warm_up(self, *, wait_seconds: float) -> None:
        """Ask Slack which workspace the bot token is (at start-up), waiting a moment for it."""
        if self.token_auth is None:
            return
        self.token_auth.warm_up()
        if wait_seconds > 0:
            try:
                async with asyncio.timeout(wait_seconds):
                    await self.token_auth.settled()
            except TimeoutError:
                log.warning("Slack's auth.test is slow; serving anyway, it is asked again")

    async def close(self, *, grace_seconds: float = 5.0) -> None:
        """Let running commands finish for a moment, then cancel the rest."""
        if self.token_auth is not None:
            await self.token_auth.close()
        if not self._tasks:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wait_idle(), timeout=grace_seconds)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="slack-command")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- bolt middleware and listeners ------------------------------------------------------

    async def _once_only(
        self,
        req: AsyncBoltRequest,
        body: dict[str, Any],
        next_: Callable[[], Awaitable[BoltResponse]],
    ) -> BoltResponse:
        # Slack retries what it thinks we missed; we acked (or are acting on) the first try.
        if _retry_attempt(req) > 0:
            log.info("ignoring a Slack retry (%s)", _header(req, "x-slack-retry-reason"))
            return BoltResponse(status=200, body="", headers={"x-slack-no-retry": "1"})
        key = _text(body.get("trigger_id")) or _text(body.get("event_id"))
        if key and not (self._seen.first_time(key) and await self._first_time_stored(key)):
            log.info("ignoring a request already handled")
            return BoltResponse(status=200, body="")
        return await next_()

    async def _first_time_stored(self, key: str) -> bool:
        # The database remembers across restarts and processes; if it cannot answer, running
        # the request (remembered in memory) beats dropping it.
        try:
            async with asyncio.timeout(REPLAY_CHECK_SECONDS):
                return await slack_replay_store.claim(self._deps.sessions, key, now=self._clock())
        except Exception as exc:
            log.warning(
                "could not check a Slack request against the database (%s); running it",
                type(exc).__name__,
            )
            return True

    async def _on_command(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        respond: AsyncRespond,
        context: AsyncBoltContext,
    ) -> None:
        if self._team_verdict(context) is False:
            await ack(text=UNKNOWN_TEAM_TEXT, response_type="ephemeral")
            return
        await ack()
        line = " ".join(_text(body.get("text"), 4000).split()) or "help"
        self._spawn(self._answer(line, body, context, respond, replace_original=None))

    async def _on_button(
        self,
        ack: AsyncAck,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: AsyncRespond,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        if self._team_verdict(context) is False:
            await self._respond(respond, error_reply(UNKNOWN_TEAM_TEXT), replace_original=False)
            return
        line = _text(action.get("action_id"), 300).removeprefix(ACTION_PREFIX).strip()
        self._spawn(self._answer(line, body, context, respond, replace_original=False))

    async def _ack_only(self, ack: AsyncAck) -> None:
        await ack()

    async def _on_form(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        # Closing the modal at once; the answer follows as an ephemeral message.
        await ack()
        if self._team_verdict(context) is False:
            return
        line = _text(view.get("callback_id"), 300).removeprefix(FORM_PREFIX).strip()
        channel_id, response_url = form_return(view)
        values = submitted_values(view)
        self._spawn(self._answer_form(line, values, channel_id, response_url, body, context))

    async def _on_lifecycle_event(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        event = body.get("event") if isinstance(body.get("event"), dict) else {}
        kind = _text((event or {}).get("type"))
        team_id = _text(body.get("team_id"))
        if kind == "tokens_revoked":
            tokens = (event or {}).get("tokens")
            if not (isinstance(tokens, dict) and tokens.get("bot")):
                return  # only user tokens went; we hold none, and the bot still works
        log.warning("Slack %s for team %s: forgetting this workspace", kind, team_id)
        if self._on_uninstall is not None and team_id:
            self._spawn(self._uninstall(self._on_uninstall, team_id))

    async def _uninstall(self, forget: Uninstall, team_id: str) -> None:
        try:
            await forget(team_id)
        except Exception:
            # Slack does not resend an acked event: the log is what tells an operator.
            log.exception("could not forget Slack workspace %s", team_id)

    # --- the work after the ack -------------------------------------------------------------

    def _team_verdict(self, context: AsyncBoltContext) -> bool | None:
        # None: start-up's auth.test has not answered yet, so the ack goes out regardless and
        # the work after it decides (`_settled_team`).
        if self.token_auth is not None and self.token_auth.is_provisional(context.authorize_result):
            return None
        return self._known_team(context)

    async def _settled_team(self, context: AsyncBoltContext) -> bool | None:
        """Whether the workspace is ours, once known; None if Slack has not said in time."""
        verdict = self._team_verdict(context)
        if verdict is not None or self.token_auth is None:
            return verdict
        try:
            async with asyncio.timeout(SETTLE_SECONDS):
                context.set_authorize_result(await self.token_auth.settled())
        except TimeoutError:
            return None
        return self._known_team(context)

    def _known_team(self, context: AsyncBoltContext) -> bool:
        # In single-workspace mode the token's own workspace (auth.test) is the only one we
        # serve; a request from any other team gets an error and changes nothing.
        result = context.authorize_result
        if result is None:
            return False
        if result.team_id and context.team_id == result.team_id:
            return True
        return bool(result.enterprise_id) and context.enterprise_id == result.enterprise_id

    async def _answer(
        self,
        line: str,
        body: Mapping[str, Any],
        context: AsyncBoltContext,
        respond: AsyncRespond,
        *,
        replace_original: bool | None,
    ) -> None:
        known = await self._settled_team(context)
        if not known:
            text = UNKNOWN_TEAM_TEXT if known is False else STARTING_TEXT
            await self._respond(respond, error_reply(text), replace_original=False)
            return
        try:
            reply = await self.reply_to(line, body, context)
        except Exception:
            log.exception("Slack command failed")
            reply = error_reply("Something went wrong on our side. Please try again.")
        if reply.form is not None and await self._open_form(reply, body, context):
            return
        await self._respond(respond, reply, replace_original=replace_original, context=context)

    async def _open_form(
        self, reply: Reply, body: Mapping[str, Any], context: AsyncBoltContext
    ) -> bool:
        trigger_id = _text(body.get("trigger_id"))
        response_url = _text(body.get("response_url"), MAX_URL) or None
        view = (
            render_form(reply.form, channel_id=context.channel_id, response_url=response_url)
            if reply.form
            else None
        )
        if not trigger_id or view is None:
            return False
        try:
            await context.client.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as exc:  # an expired trigger (over 3 s) or a refusal: answer with text
            log.warning("could not open a Slack modal: %s", exc.response.get("error"))
            return False
        except Exception:
            log.exception("could not open a Slack modal")
            return False
        return True

    async def _answer_form(
        self,
        line: str,
        values: Mapping[str, str],
        channel_id: str | None,
        response_url: str | None,
        body: Mapping[str, Any],
        context: AsyncBoltContext,
    ) -> None:
        if not await self._settled_team(context):
            return
        try:
            reply = await self.run(Submission(line, values), body, context, channel_id=channel_id)
        except Exception:
            log.exception("Slack form failed")
            reply = error_reply("Something went wrong on our side. Please try again.")
        message = render_reply(replace(reply, ephemeral=True, form=None), self._clock())
        if response_url is not None and await self._post_to(response_url, message):
            return
        user_id = context.user_id
        if not channel_id or not user_id:
            log.warning("a Slack form was answered but there is no channel to tell the user in")
            return
        try:
            await context.client.chat_postEphemeral(
                channel=channel_id, user=user_id, text=message.text, blocks=message.blocks
            )
        except Exception:
            log.exception("could not answer a Slack form")

    async def _post_to(self, response_url: str, message: SlackMessage) -> bool:
        # The command's response_url answers the user wherever they are, even in a channel
        # the bot is not in (chat.postEphemeral needs membership); it expires after 30 min.
        try:
            result = await AsyncWebhookClient(response_url).send(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral",
                replace_original=False,
            )
        except Exception:
            log.warning("could not answer a Slack form through its response_url")
            return False
        if result.status_code >= 300:
            log.info(
                "Slack refused a form answer on its response_url (HTTP %s)", result.status_code
            )
            return False
        return True

    async def reply_to(
        self, line: str, body: Mapping[str, Any], context: AsyncBoltContext
    ) -> Reply:
        """Parse a command line typed (or clicked) in Slack and run it as that user."""
        return await self.run(Line(line), body, context, channel_id=context.channel_id)

    async def run(
        self,
        source: Source,
        body: Mapping[str, Any],
        context: AsyncBoltContext,
        *,
        channel_id: str | None,
    ) -> Reply:
        """Run a command line or a form as the user in ``context``."""
        return await self._pipeline.answer(source, self._origin_for(body, context, channel_id))

    def _origin_for(
        self, body: Mapping[str, Any], context: AsyncBoltContext, channel_id: str | None
    ) -> OriginFor:
        async def origin(spec: CommandSpec | None) -> Origin | Reply:
            team_id = context.team_id or ""
            user_id = context.user_id or ""
            if not team_id or not user_id:
                return error_reply(MALFORMED_TEXT)
            is_admin = False
            # users.info is a Web API call: asked only where the answer matters.
            if spec is not None and (spec.admin_only or spec.name == "help"):
                is_admin = await self._admins.is_admin(
                    context.client, team_id=team_id, user_id=user_id
                )
            actor = Actor(
                platform=PLATFORM,
                user_id=UserId(user_id),
                display_name=_dig(body, "user_name") or _dig(body, "user", "username"),
                is_admin=is_admin,
            )
            return Origin(
                actor=actor,
                community_id=CommunityId(team_id),
                channel_id=ChannelId(channel_id) if channel_id is not None else None,
                raw=body,
            )

        return origin

    async def _respond(
        self,
        respond: AsyncRespond,
        reply: Reply,
        *,
        replace_original: bool | None,
        context: AsyncBoltContext | None = None,
    ) -> None:
        charts, png = self._charts, reply.image_png
        image_url = charts.image_url(png) if charts is not None else None
        message = render_reply(reply, self._clock(), image_url=image_url)
        try:
            result = await respond(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral" if reply.ephemeral else "in_channel",
                replace_original=replace_original,
            )
        except Exception as exc:  # unreachable, or a response_url that is not one
            log.warning("could not answer through Slack's response_url (%s)", type(exc).__name__)
            return
        if result.status_code >= 300:
            log.warning("Slack refused our answer: HTTP %s %s", result.status_code, result.body)
            return
        # No public URL for an image block: the chart follows the answer as a file. Not for a
        # private answer, since an upload is seen by the whole channel.
        if charts is None or png is None or image_url is not None or reply.ephemeral:
            return
        if context is not None:
            title = reply.image_alt or reply.title or "chart"
            await charts.upload(context.client, png=png, channel_id=context.channel_id, title=title)
