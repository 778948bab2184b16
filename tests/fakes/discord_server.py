"""A fake Discord on loopback (REST + gateway websocket) for the real discord.py client.

Every body that makes or edits a message is checked as Discord checks it
(`tests.fakes.discord_form_body`, which names the API version it follows); listings carry no
nonce, and a message gets one thread at most, as on Discord.
Every REST call is recorded; tests queue 429s (Retry-After, X-RateLimit-*) or 5xx answers,
dispatch gateway events such as INTERACTION_CREATE, and drop the gateway connection. Chaos
tests set ``inject`` to decide, per request, on an error answer or a dropped connection.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from aiohttp import web

from tests.fakes.discord_commands import command_list_error
from tests.fakes.discord_form_body import (
    callback_errors,
    invalid_form_body,
    message_errors,
    thread_name_errors,
)
from tests.fakes.discord_gateway import FakeGateway
from tests.fakes.discord_interactions import InteractionLedger
from tests.fakes.discord_rate_limits import add_rate_limit_headers

API_PREFIX = "/api/v10"
APPLICATION_ID = "290926444748734465"
GUILD_ID = "290926798626357999"
CHANNEL_ID = "645027906669510667"
FORUM_CHANNEL_ID = "645027906669510700"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "discord"
OBJECTS: dict[str, Any] = json.loads((FIXTURES / "fake_objects.json").read_text())
BOT_USER: dict[str, Any] = OBJECTS["bot_user"]


@dataclass(frozen=True, slots=True)
class Call:
    """One REST request the fake received (path without the /api/v10 prefix)."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: tuple[str, ...]
    headers: dict[str, str]
    uploads: tuple[str, ...] = ()
    """Multipart field names of the uploaded files (``files[0]``, ...)."""


@dataclass(slots=True)
class Failure:
    """A queued error answer for requests matching ``method`` and ``pattern``."""

    method: str
    pattern: re.Pattern[str]
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    times: int


DROP_BEFORE = "drop before"
"""`inject` answer: close the connection after reading the request; nothing happens."""
DROP_AFTER = "drop after"
"""`inject` answer: do what was asked, then close the connection instead of answering."""
Injected = Failure | str | None
"""What `FakeDiscord.inject` decides for a request: an error answer, a drop, or nothing."""


class FakeDiscord:
    """The fake server; use as ``async with FakeDiscord() as discord: ...``."""

    def __init__(
        self,
        *,
        guild_ids: tuple[str, ...] = (GUILD_ID,),
        now: Callable[[], float] = time.monotonic,
        token: str | None = None,
    ) -> None:
        """``now`` is the clock of the 3 s interaction window and of heartbeats (a test's own,
        to move past them without waiting); ``token``, when given, is the only one accepted."""
        self.guild_ids = guild_ids
        self.token = token
        self.calls: list[Call] = []
        self.failures: list[Failure] = []
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self.channels: dict[str, dict[str, Any]] = {
            c["id"]: {**c, "guild_id": GUILD_ID} for c in guild_payload(GUILD_ID)["channels"]
        }
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.interaction_messages: dict[str, dict[str, Any]] = {}
        self.interactions = InteractionLedger(now)
        self.gateway = FakeGateway(
            ready_events=self._ready_events, notify=self._notify, now=now, token=token
        )
        self.gateway_up = self.gateway.up
        """Cleared: new gateway connections wait (an outage); REST keeps answering."""
        self._ids = itertools.count(1_300_000_000_000_000_000)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.inject: Callable[[Call], Injected] | None = None
        self.honour_nonces = True
        """False: act as Discord once a nonce is older than its few minutes of memory."""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_get("/gateway", self.gateway.serve)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for ws in list(self.gateway.sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``."""
        answer = body if body is not None else {"message": "error", "code": 0}
        self.failures.append(
            Failure(method.upper(), re.compile(pattern), status, headers or {}, answer, times)
        )

    def rate_limit(self, method: str, pattern: str, *, retry_after: float = 1.5) -> None:
        """Answer the next matching request with a real-looking 429."""
        template = OBJECTS["rate_limited"]
        headers = template["headers"] | {
            "Retry-After": str(math.ceil(retry_after)),
            "X-RateLimit-Reset-After": str(retry_after),
        }
        body = template["body"] | {"retry_after": retry_after}
        self.fail(method, pattern, 429, headers=headers, body=body)

    def add_channel(self, guild_id: str, channel_id: str, *, kind: int = 0) -> None:
        """One more text channel (``kind`` 0) in a guild, for fan-outs over many channels."""
        self.channels[channel_id] = {"id": channel_id, "type": kind, "guild_id": guild_id}

    def matching(self, method: str, pattern: str) -> list[Call]:
        """Recorded calls with this method whose path matches ``pattern``."""
        regex = re.compile(pattern)
        return [c for c in self.calls if c.method == method.upper() and regex.fullmatch(c.path)]

    async def wait_for_call(self, method: str, pattern: str, *, count: int = 1) -> Call:
        """The ``count``-th matching call, once it arrives (5 s at most)."""
        await self._wait(lambda: len(self.matching(method, pattern)) >= count)
        return self.matching(method, pattern)[count - 1]

    async def wait_for_gateway(self, *, identifies: int = 1, resumes: int = 0) -> None:
        """Until the client has identified (and resumed) this many times."""
        await self._wait(
            lambda: self.gateway.identifies >= identifies and self.gateway.resumes >= resumes
        )

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate`` holds, checked after each REST call and gateway op (5 s at most)."""
        await self._wait(predicate)

    async def _wait(self, predicate: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH to every connected client (kept for a RESUME to replay)."""
        if event == "INTERACTION_CREATE":  # its 3 s to answer start now
            self.interactions.created(data)
        await self.gateway.dispatch(event, data)

    async def dispatch_unparsable(self) -> None:
        """Send a GUILD_CREATE without an id, which discord.py's parser raises on."""
        await self.dispatch("GUILD_CREATE", {"unavailable": False, "name": "no id"})

    async def drop(self, code: int = 4000, *, resumable: bool = True) -> None:
        """Close every gateway connection (see `FakeGateway.drop`)."""
        await self.gateway.drop(code, resumable=resumable)

    def _ready_events(self, shard: list[int]) -> list[tuple[str, dict[str, Any]]]:
        guilds = [{"id": g, "unavailable": True} for g in self.guild_ids]
        ready = OBJECTS["ready"] | {
            "user": BOT_USER,
            "guilds": guilds,
            "resume_gateway_url": self.gateway_url,
            "shard": shard,
        }
        return [("READY", ready)] + [("GUILD_CREATE", guild_payload(g)) for g in self.guild_ids]

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body, files, uploads = await _read_body(request)
        call = Call(
            request.method, path, dict(request.query), body, files, dict(request.headers), uploads
        )
        self.calls.append(call)
        try:
            return await self._answer(request, call)
        finally:
            await self._notify()

    async def _answer(self, request: web.Request, call: Call) -> web.StreamResponse:
        # Interaction callbacks and webhooks are authorised by the token in their path.
        by_path = call.path.startswith(("/interactions/", "/webhooks/"))
        if self.token and not by_path and call.headers.get("Authorization") != f"Bot {self.token}":
            return _error(401, 0, "401: Unauthorized")
        injected = self.inject(call) if self.inject is not None else None
        if isinstance(injected, Failure):
            return _json(injected.body, status=injected.status, headers=injected.headers)
        if injected == DROP_BEFORE:
            return _dropped(request)
        failure = self._failure_for(call)
        if failure is not None:
            return _json(failure.body, status=failure.status, headers=failure.headers)
        answer = await self._route(call)
        # Scripted answers above keep exactly the headers their test chose.
        add_rate_limit_headers(answer, call.method, call.path)
        return _dropped(request) if injected == DROP_AFTER else answer

    def _failure_for(self, call: Call) -> Failure | None:
        for failure in self.failures:
            if failure.method == call.method and failure.pattern.fullmatch(call.path):
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
                return failure
        return None

    async def _route(self, call: Call) -> web.StreamResponse:
        m, p = call.method, call.path
        if m == "GET" and p == "/gateway/bot":
            return _json(OBJECTS["gateway_bot"] | {"url": self.gateway_url})
        if m == "GET" and p == "/users/@me":
            return _json(BOT_USER)
        if m == "GET" and p == "/oauth2/applications/@me":
            return _json(OBJECTS["application"])
        if match := re.fullmatch(r"/applications/\d+(?:/guilds/(\d+))?/commands", p):
            scope = match.group(1) or "global"
            if m == "PUT" and (bad := command_list_error(call.json)):
                return _json(bad, status=400)
            if m == "PUT":
                stamp = {"application_id": APPLICATION_ID, "version": "1"}
                self.commands[scope] = [{**c, **stamp, "id": self._id()} for c in call.json]
            return _json(self.commands.get(scope, []))
        if match := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", p):
            if bad := callback_errors(call.json, call.uploads):
                return _json(invalid_form_body(bad), status=400)
            return self._callback(match.group(1), match.group(2), call.json)
        if match := re.fullmatch(r"/webhooks/\d+/([^/]+)(/messages/@original)?", p):
            if m in ("POST", "PATCH") and (bad := message_errors(call.json, call.uploads)):
                return _json(invalid_form_body(bad), status=400)
            return self._webhook(m, match.group(1), bool(match.group(2)), call.json)
        if match := re.fullmatch(r"/channels/(\d+)", p):
            channel = self.channels.get(match.group(1))
            if channel is None:
                return _error(404, 10003, "Unknown Channel")
            return _json(channel)
        if match := re.fullmatch(r"/channels/(\d+)/messages(?:/(\d+))?(/threads)?", p):
            return self._channel_messages(call, match.group(1), match.group(2), match.group(3))
        if m == "POST" and (match := re.fullmatch(r"/channels/(\d+)/threads", p)):
            return self._forum_post(match.group(1), call)
        if m == "GET" and (match := re.fullmatch(r"/guilds/(\d+)/threads/active", p)):
            return self._active_threads(match.group(1))
        return _error(404, 0, f"fake Discord has no {m} {p}")

    def _id(self) -> str:
        return str(next(self._ids))

    def _message(
        self, channel_id: str, body: dict[str, Any], *, message_id: str | None = None
    ) -> dict[str, Any]:
        return {
            **copy.deepcopy(OBJECTS["message"]),
            "id": message_id or self._id(),
            "channel_id": channel_id,
            **{k: body[k] for k in ("content", "embeds", "components", "nonce") if body.get(k)},
            "flags": int(body.get("flags") or 0),
        }

    def _callback(self, interaction_id: str, token: str, body: dict[str, Any]) -> web.Response:
        kind = body["type"]
        if refused := self.interactions.callback(interaction_id, token, kind):
            return _json(refused[1], status=refused[0])
        data = body.get("data") or {}
        message = None
        if kind in (4, 5):
            message = self._message(CHANNEL_ID, data)
            self.interaction_messages[token] = message
        interaction = {
            "id": interaction_id,
            "type": 2,
            "response_message_id": message["id"] if message else None,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": bool(int(data.get("flags") or 0) & 64),
        }
        resource = {"type": kind, "message": message} if message else None
        return _json({"interaction": interaction, "resource": resource})

    def _webhook(
        self, method: str, token: str, original: bool, body: dict[str, Any]
    ) -> web.Response:
        if refused := self.interactions.webhook(token):
            return _json(refused[1], status=refused[0])
        if not original and method == "POST":
            message = self._message(CHANNEL_ID, body)
            self.interaction_messages.setdefault(token, message)
            return _json(message)
        current = self.interaction_messages.get(token)
        if current is None:
            return _error(404, 10008, "Unknown Message")
        if method == "DELETE":
            del self.interaction_messages[token]
            return web.Response(status=204)
        if method == "PATCH":
            _edit(current, body)
        return _json(current)

    def _channel_messages(
        self, call: Call, channel_id: str, message_id: str | None, threads: str | None
    ) -> web.Response:
        if channel_id not in self.channels:
            return _error(404, 10003, "Unknown Channel")
        stored = self.messages.setdefault(channel_id, [])
        if call.method in ("POST", "PATCH"):
            bad = (
                thread_name_errors(call.json)
                if threads
                else message_errors(call.json, call.uploads)
            )
            if bad:
                return _json(invalid_form_body(bad), status=400)
        if call.method == "GET" and message_id is None:
            limit = int(call.query.get("limit", "50"))
            return _json([_as_listed(x) for x in reversed(stored)][:limit])
        if call.method == "POST" and message_id is None:
            if self.channels[channel_id].get("type") in (15, 16):  # forum and media channels
                return _error(400, 50008, "Cannot send messages in a non-text channel")
            nonce = call.json.get("nonce")
            if call.json.get("enforce_nonce") and nonce and self.honour_nonces:
                for earlier in stored:
                    if earlier.get("nonce") == nonce:
                        return _json(earlier)
            message = self._message(channel_id, call.json)
            stored.append(message)
            return _json(message)
        existing = next((x for x in stored if x["id"] == message_id), None)
        if existing is None:
            return _error(404, 10008, "Unknown Message")
        if call.method == "GET" and not threads:
            return _json(_as_listed(existing))
        if call.method == "PATCH" and not threads:
            _edit(existing, call.json)
            return _json(existing)
        if call.method == "POST" and threads:
            if existing["id"] in self.channels:  # a thread started from a message has its id
                return _error(400, 160004, "A thread has already been created for this message")
            return _json(self._thread(existing["id"], channel_id, call.json), status=201)
        return _error(405, 0, "method not allowed")

    def _thread(self, thread_id: str, parent_id: str, body: dict[str, Any]) -> dict[str, Any]:
        parent = self.channels[parent_id]
        thread = {"id": thread_id, "type": 11, "guild_id": parent.get("guild_id")}
        self.channels[thread_id] = thread | {"parent_id": parent_id, "name": body.get("name")}
        return self.channels[thread_id]

    def _active_threads(self, guild_id: str) -> web.Response:
        if guild_id not in self.guild_ids:
            return _error(404, 10004, "Unknown Guild")
        threads = [
            c
            for c in self.channels.values()
            if c.get("type") in (10, 11, 12) and c.get("guild_id") == guild_id
        ]
        return _json({"threads": threads, "members": []})

    def _forum_post(self, channel_id: str, call: Call) -> web.Response:
        body = call.json
        forum = self.channels.get(channel_id)
        if forum is None:
            return _error(404, 10003, "Unknown Channel")
        bad = thread_name_errors(body)
        if starter_errors := message_errors(body.get("message"), call.uploads):
            bad["message"] = starter_errors
        if bad:
            return _json(invalid_form_body(bad), status=400)
        thread_id = self._id()
        thread = self._thread(thread_id, channel_id, body)
        starter = self._message(thread_id, body.get("message") or {}, message_id=thread_id)
        self.messages[thread_id] = [starter]
        return _json({**thread, "message": starter}, status=201)


async def _read_body(request: web.Request) -> tuple[Any, tuple[str, ...], tuple[str, ...]]:
    """The JSON body, the uploaded files' names and their multipart field names."""
    if request.content_type.startswith("multipart/"):
        payload: Any = None
        files: list[str] = []
        uploads: list[str] = []
        reader = await request.multipart()
        async for part in reader:
            name = getattr(part, "name", None)
            if name == "payload_json":
                payload = json.loads(await part.text())  # type: ignore[union-attr]
            else:
                files.append(getattr(part, "filename", None) or str(name))
                uploads.append(str(name))
                await part.read()  # type: ignore[union-attr]
        return payload, tuple(files), tuple(uploads)
    if request.can_read_body:
        text = await request.text()
        return (json.loads(text) if text else None), (), ()
    return None, (), ()


def _json(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py decodes only that content type as JSON.
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={**(headers or {}), "Content-Type": "application/json"},
    )


def _dropped(request: web.Request) -> web.Response:
    # The client sees its connection close with no answer, as on a network cut or a crash.
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=204)


def _as_listed(message: dict[str, Any]) -> dict[str, Any]:
    # Discord echoes a nonce only in the answer to the create (and its gateway event); a
    # message read back later has none, so nothing may rely on finding it there.
    return {k: v for k, v in message.items() if k != "nonce"}


def _edit(message: dict[str, Any], body: dict[str, Any]) -> None:
    message.update({k: v for k, v in body.items() if k in {"content", "embeds", "components"}})


def _error(status: int, code: int, message: str) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def guild_payload(guild_id: str) -> dict[str, Any]:
    """A small GUILD_CREATE: one text channel, one forum, the @everyone role."""
    guild: dict[str, Any] = copy.deepcopy(OBJECTS["guild"])
    guild["id"] = guild["roles"][0]["id"] = guild_id
    return guild
