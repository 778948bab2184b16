"""A fake Slack on loopback: Web API, response_url hooks and a Socket Mode websocket server.

The real slack_sdk clients talk to it (``AsyncWebClient(base_url=fake.api_url)``); every call is
recorded with its method, parameters and token, and tests can script errors and 429s per method.
Chaos tests set ``inject`` to decide, per call, on an error answer or a dropped connection.

It is as strict as Slack: tokens are checked, blocks, metadata and modals are validated with
slack_sdk's own models (`tests.fakes.slack_rules`), trigger_ids expire after 3 s and response_urls
after 5 uses or 30 minutes, history comes in pages, chat.postEphemeral needs channel membership.
What Slack accepts but our product must never do (a message without a ``text`` fallback) lands
in ``violations``, and leaving the fake with any fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

from tests.fakes.slack_rules import (
    Lifetimes,
    history_page,
    message_refusal,
    token_refusal,
    view_refusal,
)

TEAM_ID = "T111"
BOT_USER_ID = "UBOT"
CLIENT_ID = "111.222"
CLIENT_SECRET = "client-secret-for-tests"


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Web API request as the fake received it."""

    method: str
    params: dict[str, Any]
    token: str | None


@dataclass(slots=True)
class Failure:
    """A scripted answer for the next ``times`` calls of a method."""

    error: str = "internal_error"
    status: int = 200
    retry_after: int | None = None
    times: int = 1
    raw_body: bytes | None = None


DROP_BEFORE = "drop before"
"""`inject` answer: close the connection after reading the request; nothing happens."""
DROP_AFTER = "drop after"
"""`inject` answer: do what was asked, then close the connection instead of answering."""
Injected = Failure | str | None
"""What `FakeSlack.inject` decides for a call: an error answer, a drop, or nothing."""


@dataclass(slots=True)
class StoredMessage:
    channel: str
    ts: str
    text: str
    blocks: list[Any]
    metadata: dict[str, Any] | None = None
    thread_ts: str | None = None


@dataclass(slots=True)
class Grant:
    """What one OAuth code installs: a workspace and its bot token."""

    team_id: str
    team_name: str
    bot_token: str
    installer: str = "UINSTALLER"


@dataclass(slots=True)
class Upload:
    """A file that went through getUploadURLExternal → upload → completeUploadExternal."""

    file_id: str
    filename: str
    data: bytes = b""
    title: str | None = None
    channel: str | None = None
    completed: bool = False


@dataclass(slots=True)
class FakeSlack:
    """Answers auth.test, users.info, chat.*, conversations.history, apps.connections.open…"""

    team_id: str = TEAM_ID
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[ApiCall] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)
    """JSON bodies posted to response URLs (``respond``), in order, with ``_hook`` added."""
    messages: list[StoredMessage] = field(default_factory=list)
    acks: list[dict[str, Any]] = field(default_factory=list)
    """Socket Mode frames received from the app (acks carry ``envelope_id``)."""
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    """OAuth codes oauth.v2.access accepts (each once), as Slack's consent screen would issue."""
    tokens: dict[str, str] = field(default_factory=dict)
    """Bot token → team id, for auth.test (a token not listed belongs to ``team_id``)."""
    usergroups: dict[str, dict[str, Any]] = field(default_factory=dict)
    """User group id → {"handle": …, "users": [...]}."""
    uploads: dict[str, Upload] = field(default_factory=dict)
    inject: Callable[[ApiCall], Injected] | None = None
    holds: dict[str, asyncio.Event] = field(default_factory=dict)
    """Method → an event: calls of that method are answered only once the test sets it."""
    clock: Callable[[], float] = time.monotonic
    """Seconds, for trigger_id and response_url lifetimes; tests inject a fake one."""
    revoked_tokens: set[str] = field(default_factory=set)
    """Tokens Slack no longer accepts (``token_revoked``)."""
    outside_channels: set[str] = field(default_factory=set)
    """Channels the bot is not a member of: chat.postEphemeral there fails with not_in_channel."""
    history_page_size: int | None = None
    """At most this many messages a page, whatever ``limit`` asks (Slack may return fewer)."""
    violations: list[str] = field(default_factory=list)
    """Things Slack accepts but our product must never do; non-empty fails the test on exit."""
    socket_connections: int = 0
    """How many Socket Mode websockets the app has opened so far."""
    _lifetimes: Lifetimes = field(default_factory=Lifetimes)
    _runner: web.AppRunner | None = None
    _port: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        app.router.add_post("/upload/{file_id}", self._upload)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        self._port = server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if exc is None and self.violations:
            raise AssertionError(f"the product did what Slack discourages: {self.violations}")

    # --- addresses ------------------------------------------------------------------------

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What ``SLACK_API_URL`` / ``AsyncWebClient(base_url=…)`` should be."""
        return f"{self.base}/api/"

    @property
    def socket_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/socket"

    def response_url(self, name: str = "r1") -> str:
        """A response_url for payloads; what is posted to it lands in `responses`.

        Its 30 minutes start at the first call for a name (the interaction that carries it).
        """
        self._lifetimes.issue_hook(name, self.clock())
        return f"{self.base}/respond/{name}"

    def trigger_id(self, name: str) -> str:
        """A trigger_id issued now, as in an interaction payload: it opens one modal within 3 s."""
        self._lifetimes.issue_trigger(name, self.clock())
        return name

    # --- scripting and inspection -----------------------------------------------------------

    def fail(self, method: str, failure: Failure) -> None:
        """Answer the next call(s) of ``method`` with an error, a status or a 429."""
        self.failures.setdefault(method, []).append(failure)

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (never longer than ``timeout``) until ``predicate`` holds."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- Web API --------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            params.update(await request.json())
        elif request.can_read_body:
            params.update(await request.post())
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else params.get("token")
        call = ApiCall(method=method, params=params, token=token)
        self.calls.append(call)
        if (refused := token_refusal(method, token, self.revoked_tokens)) is not None:
            await self._notify()
            return web.json_response(refused)
        if (hold := self.holds.get(method)) is not None:
            await self._notify()
            await hold.wait()
        injected = self.inject(call) if self.inject is not None else None
        if injected == DROP_BEFORE:
            return _dropped(request)
        if isinstance(injected, Failure):
            headers = {"Retry-After": str(injected.retry_after)} if injected.retry_after else {}
            return web.json_response(
                {"ok": False, "error": injected.error}, status=injected.status, headers=headers
            )
        params = {**params, "_token": token}
        if auth.startswith("Basic "):  # oauth.v2.access sends the client id and secret so
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            params["_client"] = (client_id, secret)
        await self._notify()
        scripted = self.failures.get(method)
        if scripted:
            failure = scripted[0]
            failure.times -= 1
            if failure.times <= 0:
                scripted.pop(0)
            headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
            if failure.raw_body is not None:
                return web.Response(status=failure.status, body=failure.raw_body, headers=headers)
            return web.json_response(
                {"ok": False, "error": failure.error}, status=failure.status, headers=headers
            )
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        answer: dict[str, Any] = handler(params)
        return _dropped(request) if injected == DROP_AFTER else web.json_response(answer)

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.com/",
            "team": "Fake",
            "user": "outagebot",
            "team_id": self.tokens.get(str(params.get("_token")), self.team_id),
            "user_id": BOT_USER_ID,
            "bot_id": "B111",
            "is_enterprise_install": False,
        }

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(params.get("user")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": {"id": params.get("user"), "team_id": self.team_id, **user}}

    def _message_refusal(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        if refused := message_refusal(params):
            return refused
        if params.get("blocks") and not params.get("text"):
            # Slack posts it, but notifications and screen readers get nothing to show.
            self.violations.append(f"{method} without a text fallback")
        return None

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if refused := self._message_refusal("chat.postMessage", params):
            return refused
        ts = f"1700000000.{next(self._ts):06d}"
        channel = str(params.get("channel"))
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        self.messages.append(
            StoredMessage(
                channel=channel,
                ts=ts,
                text=str(params.get("text", "")),
                blocks=_as_list(params.get("blocks")),
                metadata=metadata,
                thread_ts=params.get("thread_ts"),
            )
        )
        return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        if refused := self._message_refusal("chat.update", params):
            return refused
        for message in self.messages:
            if message.channel == params.get("channel") and message.ts == params.get("ts"):
                message.text = str(params.get("text", ""))
                message.blocks = _as_list(params.get("blocks"))
                return {"ok": True, "channel": message.channel, "ts": message.ts}
        return {"ok": False, "error": "message_not_found"}

    def _m_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = [
            m for m in self.messages if m.channel == params.get("channel") and m.thread_ts is None
        ]
        return self._page(list(reversed(wanted)), params)  # newest first, as Slack answers

    def _m_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("ts")
        wanted = [
            m
            for m in self.messages
            if m.channel == params.get("channel") and (m.ts == parent or m.thread_ts == parent)
        ]
        if not wanted:
            return {"ok": False, "error": "thread_not_found"}
        return self._page(wanted, params)  # the parent, then replies oldest first

    def _page(self, messages: list[StoredMessage], params: dict[str, Any]) -> dict[str, Any]:
        with_metadata = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        items = []
        for m in messages:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text}
            if with_metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            items.append(item)
        return history_page(items, params, self.history_page_size)

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_url}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        if refused := self._message_refusal("chat.postEphemeral", params):
            return refused
        if params.get("channel") in self.outside_channels:
            return {"ok": False, "error": "not_in_channel"}
        return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        trigger = str(params.get("trigger_id") or "")
        if error := self._lifetimes.trigger_error(trigger, self.clock()):
            return {"ok": False, "error": error}
        if refused := view_refusal(params.get("view")):
            return refused
        self._lifetimes.use_trigger(trigger)
        return {"ok": True, "view": {"id": "V111"}}

    def _m_oauth_v2_access(self, params: dict[str, Any]) -> dict[str, Any]:
        sent = params.get("_client") or (params.get("client_id"), params.get("client_secret"))
        if sent != (CLIENT_ID, CLIENT_SECRET):
            return {"ok": False, "error": "invalid_client_id"}
        grant = self.grants.pop(str(params.get("code")), None)  # a code works once
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        self.tokens[grant.bot_token] = grant.team_id
        return {
            "ok": True,
            "access_token": grant.bot_token,
            "token_type": "bot",
            "scope": "commands,chat:write",
            "bot_user_id": BOT_USER_ID,
            "app_id": "A111",
            "team": {"id": grant.team_id, "name": grant.team_name},
            "enterprise": None,
            "authed_user": {"id": grant.installer},
            "is_enterprise_install": False,
        }

    def _m_usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        groups = [{"id": gid, "handle": g["handle"]} for gid, g in self.usergroups.items()]
        return {"ok": True, "usergroups": groups}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(params.get("usergroup")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": list(group["users"])}

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ts):06d}"
        self.uploads[file_id] = Upload(file_id=file_id, filename=str(params.get("filename")))
        return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        files = json.loads(files) if isinstance(files, str) else files or []
        done = []
        for item in files:
            upload = self.uploads.get(item.get("id"))
            if upload is None or not upload.data:
                return {"ok": False, "error": "file_not_found"}
            upload.title = item.get("title")
            upload.channel = params.get("channel_id")
            upload.completed = True
            done.append({"id": upload.file_id, "title": upload.title})
        return {"ok": True, "files": done}

    # --- response_url hooks -------------------------------------------------------------------

    async def _respond(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if error := self._lifetimes.use_hook(name, self.clock()):
            return web.Response(status=404, text=error)
        body = await request.json()
        if body.get("blocks") is not None and (
            refused := message_refusal({"channel": name, **body})
        ):
            return web.Response(status=400, text=str(refused["error"]))
        if body.get("blocks") and not body.get("text"):
            self.violations.append("a response_url answer without a text fallback")
        body["_hook"] = name
        self.responses.append(body)
        await self._notify()
        return web.Response(text="ok")

    async def _upload(self, request: web.Request) -> web.Response:
        upload = self.uploads.get(request.match_info["file_id"])
        if upload is None:
            return web.Response(status=404)
        upload.data = await request.read()
        await self._notify()
        return web.Response(text="OK - " + str(len(upload.data)))

    # --- Socket Mode --------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        self.socket_connections += 1
        await ws.send_json(
            {"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A111"}}
        )
        await self._notify()
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self.acks.append(json.loads(frame.data))
                    await self._notify()
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove(ws)
            await self._notify()
        return ws

    @property
    def socket_connected(self) -> bool:
        return bool(self._sockets)

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    async def send_envelope(self, envelope: dict[str, Any]) -> None:
        """Push one Socket Mode envelope to the connected app.

        A first delivery says so as Slack's do (``retry_attempt: 0``, ``retry_reason: ""``), and
        the trigger_id it carries starts its 3 seconds now.
        """
        envelope = {"retry_attempt": 0, "retry_reason": "", **envelope}
        payload = envelope.get("payload")
        trigger = payload.get("trigger_id") if isinstance(payload, dict) else None
        if isinstance(trigger, str) and not self._lifetimes.knows_trigger(trigger):
            self.trigger_id(trigger)
        await self._sockets[-1].send_json(envelope)

    async def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Slack's notice that it will close this websocket soon: the app should reconnect."""
        await self._sockets[-1].send_json(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )

    async def close_socket(self, index: int = 0) -> None:
        """Close one websocket from Slack's side (the oldest by default)."""
        await self._sockets[index].close()

    def acked(self, envelope_id: str) -> bool:
        return any(a.get("envelope_id") == envelope_id for a in self.acks)


def _dropped(request: web.Request) -> web.Response:
    # The client sees its connection close with no answer, as on a network cut or a crash.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(value) if isinstance(value, list) else []
