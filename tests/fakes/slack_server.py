"""A fake Slack on loopback: Web API, response_url hooks and a Socket Mode websocket server.

The real slack_sdk clients talk to it (``AsyncWebClient(base_url=fake.api_url)``); every call is
recorded with its method, parameters and token, and tests can script errors and 429s per method.
Chaos tests set ``inject`` to decide, per call, on an error answer or a dropped connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import WSMsgType, web

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
        """A response_url for payloads; what is posted to it lands in `responses`."""
        return f"{self.base}/respond/{name}"

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

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if bad := _duplicate_action_ids(_as_list(params.get("blocks"))):
            return bad
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
        if bad := _duplicate_action_ids(_as_list(params.get("blocks"))):
            return bad
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
        with_metadata = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        out = []
        for m in reversed(wanted[-int(params.get("limit", 100)) :]):
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text}
            if with_metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            out.append(item)
        return {"ok": True, "messages": out, "has_more": False}

    def _m_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        parent = params.get("ts")
        wanted = [
            m
            for m in self.messages
            if m.channel == params.get("channel") and (m.ts == parent or m.thread_ts == parent)
        ]
        with_metadata = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        out = []
        for m in wanted[: int(params.get("limit", 100))]:
            item: dict[str, Any] = {"type": "message", "ts": m.ts, "text": m.text}
            if with_metadata and m.metadata is not None:
                item["metadata"] = m.metadata
            out.append(item)
        return {"ok": True, "messages": out, "has_more": False}

    def _m_apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": self.socket_url}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": f"1700000000.{next(self._ts):06d}"}

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
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
        body = await request.json()
        body["_hook"] = request.match_info["name"]
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

    async def send_envelope(self, envelope: dict[str, Any]) -> None:
        """Push one Socket Mode envelope to the connected app."""
        await self._sockets[-1].send_json(envelope)

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


def _duplicate_action_ids(blocks: list[Any]) -> dict[str, Any] | None:
    """Slack's answer to blocks whose action_ids repeat within one message, or None."""
    seen: set[str] = set()
    for b, block in enumerate(blocks):
        for e, element in enumerate(block.get("elements") or [] if isinstance(block, dict) else []):
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if action_id is None:
                continue
            if action_id in seen:
                pointer = f"[json-pointer:/blocks/{b}/elements/{e}/action_id]"
                return {
                    "ok": False,
                    "error": "invalid_blocks",
                    "errors": [f"duplicate action_id {pointer}"],
                }
            seen.add(action_id)
    return None
