"""The fake Discord's gateway websocket, as strict as Discord's about the session.

HELLO, then IDENTIFY (a wrong token is closed with 4004 "Authentication failed") or RESUME
(replays what the client missed, or INVALID_SESSION once the session is over). Clients must
heartbeat: `expire_silent` closes, with 4009 "Session timed out", every connection that has not
for longer than the grace, measured on the fake's own clock so a test moves it instead of
waiting. Tests can also ask for a reconnect (op 7) or invalidate the session (op 9), as Discord
does during its deploys. Close codes: developers/topics/opcodes-and-status-codes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

HEARTBEAT_INTERVAL_MS = 45_000
HEARTBEAT_GRACE_SECONDS = HEARTBEAT_INTERVAL_MS / 1000 * 1.5
"""Discord names no exact grace; a missed beat and a half is what the fake tolerates."""

ReadyEvents = Callable[[list[int]], list[tuple[str, dict[str, Any]]]]
"""The dispatches that answer an IDENTIFY for a shard: READY, then each GUILD_CREATE."""


class FakeGateway:
    """Connections, the session's sequence and what it dispatched, and counts tests check."""

    def __init__(
        self,
        *,
        ready_events: ReadyEvents,
        notify: Callable[[], Awaitable[None]],
        now: Callable[[], float],
        token: str | None,
    ) -> None:
        self._ready_events = ready_events
        self._notify = notify
        self._now = now
        self.token = token
        """The bot token IDENTIFY and RESUME must carry; None: any non-empty one."""
        self.sockets: list[web.WebSocketResponse] = []
        self.last_beat: dict[web.WebSocketResponse, float] = {}
        self.up = asyncio.Event()
        """Cleared: new connections wait (an outage)."""
        self.up.set()
        self.sequence = 0
        self.identifies = 0
        self.resumes = 0
        self.heartbeats = 0
        self.invalidations = 0
        self.refused_tokens = 0
        self.resumable = True
        self.dispatched: list[tuple[int, str, dict[str, Any]]] = []
        """Every dispatch of the session (sequence, event, data): a RESUME replays those missed."""

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to every connected client (kept for a RESUME to replay)."""
        connected = [ws for ws in self.sockets if not ws.closed]
        if not connected:  # nobody connected: Discord keeps it for the session
            self.sequence += 1
            self.dispatched.append((self.sequence, event, data))
        for ws in connected:
            await self._send(ws, event, data)
            self.dispatched.append((self.sequence, event, data))

    async def drop(self, code: int = 4000, *, resumable: bool = True) -> None:
        """Close every connection, as Discord does on an internal error.

        ``resumable=False`` ends the session too (as with 4009, session timed out): a RESUME is
        then answered with INVALID_SESSION and the client must IDENTIFY again."""
        self.resumable = self.resumable and resumable
        for ws in list(self.sockets):
            await ws.close(code=code, message=b"dropped by test")

    async def ask_to_reconnect(self) -> None:
        """Op 7 RECONNECT: the client should close, connect again and RESUME."""
        for ws in list(self.sockets):
            await ws.send_json({"op": 7, "d": None, "s": None, "t": None})

    async def invalidate_session(self, *, resumable: bool) -> None:
        """Op 9 INVALID_SESSION: ``d: true`` lets the client RESUME; false ends the session."""
        self.resumable = self.resumable and resumable
        self.invalidations += 1
        for ws in list(self.sockets):
            await ws.send_json({"op": 9, "d": resumable, "s": None, "t": None})

    async def request_heartbeat(self) -> None:
        """Op 1 from Discord: the client must heartbeat at once."""
        for ws in list(self.sockets):
            await ws.send_json({"op": 1, "d": self.sequence, "s": None, "t": None})

    async def expire_silent(self) -> int:
        """Close with 4009 every connection whose last heartbeat is older than the grace."""
        silent = [
            ws
            for ws in self.sockets
            if self._now() - self.last_beat.get(ws, self._now()) > HEARTBEAT_GRACE_SECONDS
        ]
        if silent:
            self.resumable = False  # 4009: "Reconnect and start a new one"
        for ws in silent:
            await ws.close(code=4009, message=b"Session timed out")
        return len(silent)

    async def serve(self, request: web.Request) -> web.WebSocketResponse:
        """One client connection, until it closes."""
        await self.up.wait()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        self.last_beat[ws] = self._now()
        hello = {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}
        await ws.send_json({"op": 10, "d": hello, "s": None, "t": None})
        try:
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                await self._op(ws, payload["op"], payload.get("d"))
        finally:
            self.sockets.remove(ws)
            self.last_beat.pop(ws, None)
        return ws

    async def _op(self, ws: web.WebSocketResponse, op: int, data: Any) -> None:
        if op == 1:
            self.heartbeats += 1
            self.last_beat[ws] = self._now()
            await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            await self._notify()
        elif op in (2, 6) and not self._token_accepted(data):
            self.refused_tokens += 1
            await ws.close(code=4004, message=b"Authentication failed.")
            await self._notify()
        elif op == 2:
            self.identifies += 1
            self.resumable, self.dispatched = True, []
            for event, event_data in self._ready_events(data.get("shard") or [0, 1]):
                await self._send(ws, event, event_data)
            await self._notify()
        elif op == 6 and not self.resumable:
            self.invalidations += 1
            await ws.send_json({"op": 9, "d": False, "s": None, "t": None})
            await self._notify()
        elif op == 6:
            self.resumes += 1
            for sequence, event, missed in self.dispatched:
                if sequence > (data.get("seq") or 0):
                    await ws.send_json({"op": 0, "t": event, "s": sequence, "d": missed})
            await self._send(ws, "RESUMED", {})
            await self._notify()

    def _token_accepted(self, data: Any) -> bool:
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            return False
        return self.token is None or token.removeprefix("Bot ") == self.token

    async def _send(self, ws: web.WebSocketResponse, event: str, data: dict[str, Any]) -> None:
        self.sequence += 1
        await ws.send_json({"op": 0, "t": event, "s": self.sequence, "d": data})
