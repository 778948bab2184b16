"""A fake Discord REST API that enforces Discord's rate limits with real 429 answers.

`tests/fakes/discord_server.py` only answers 429 when a test queues one; a fan-out benchmark
needs a server that *enforces* the limits, whatever the client does:

* global: at most `Limits.global_per_second` requests in any sliding one-second window (arrival
  times at the server). Over it: 429 with ``X-RateLimit-Global: true``, ``X-RateLimit-Scope:
  global``, ``Retry-After`` and ``{"global": true, "retry_after": s}``. The requests it rejects
  do not count against the window; all others (per-route 429s too) do.
* per route: ``Limits.route_limit`` requests per ``Limits.route_window`` seconds per
  (method, route, channel) bucket, the window starting at the bucket's first request, as
  Discord's buckets reset. Every answer carries ``X-RateLimit-Limit/Remaining/Reset/
  Reset-After/Bucket``; over it: 429 with ``X-RateLimit-Scope: user`` and ``"global": false``.

Any numeric channel id is a text channel (type 0) of one guild; a thread started from a message
has the message's id (type 11). Message creates honour ``nonce`` + ``enforce_nonce`` as Discord
does (the existing message is returned; counted as ``nonce_dedup``). Every created message is
recorded with its channel, nonce and the server's ``time.monotonic()`` (system-wide on Linux, so
comparable with the benchmark's clock).

The server runs in a forked child (`FakeDiscordProcess`), so its CPU is not the benchmark's and it
cannot be starved by it. Start it before the benchmark's event loop. Helpers for bench/fanout.py:
`FakeDiscordProcess.worker` (the real DiscordSender and OutboxWorker pointed at the fake),
`.follow` (a callback per created message), `channel_ids` and `summarise` (what the fake saw).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import math
import multiprocessing
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiohttp import ClientSession, web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.adapters.discord.sender import DiscordSender
from bot.core.timeutil import system_clock
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.sources.catalog import Catalog

API_PREFIX = "/api/v10"
GUILD_ID = "1100000000000000001"
GLOBAL_PER_SECOND = 50
SNOWFLAKE = 1_200_000_000_000_000_000
_ROUTE = re.compile(r"/channels/(\d+)(/messages)?(?:/(\d+))?(/threads)?")


@dataclass(frozen=True, slots=True)
class Limits:
    """What the fake enforces, and how slow it answers."""

    global_per_second: int = GLOBAL_PER_SECOND
    route_limit: int = 5
    route_window: float = 5.0
    delay: float = 0.0  # seconds added before every answer (a simulated round trip)


@dataclass(frozen=True, slots=True)
class Created:
    """A message the fake stored (thread replies are stored under the thread's id)."""

    at: float
    channel_id: str
    nonce: str | None
    message_id: str
    title: str


@dataclass(slots=True)
class _Bucket:
    remaining: int
    reset_at: float


class _Server:
    def __init__(self, limits: Limits, events: Connection) -> None:
        self.limits = limits
        self.events = events
        self.watch = False
        self.reset()

    def reset(self) -> None:
        self.window: collections.deque[float] = collections.deque()
        self.buckets: dict[str, _Bucket] = {}
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.threads: set[str] = set()
        self.answers: collections.Counter[str] = collections.Counter()
        self.counted: list[float] = []  # arrival of every request within the global limit
        self.created: list[Created] = []
        self.global_429 = self.route_429 = self.nonce_dedup = 0
        self.ids = itertools.count(1_300_000_000_000_000_000)

    def stats(self) -> dict[str, Any]:
        return {
            "answers": dict(self.answers),
            "counted": list(self.counted),
            "created": list(self.created),
            "global_429": self.global_429,
            "route_429": self.route_429,
            "nonce_dedup": self.nonce_dedup,
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        now = time.monotonic()
        raw = await request.read()
        path = "/" + request.match_info["tail"]
        match = _ROUTE.fullmatch(path)
        route = f"{request.method} {_template(match) if match else path}"
        response = self._limit(now, route, match.group(1) if match else "")
        if response is None:
            body = json.loads(raw) if raw else None
            status, data = self._serve(now, request.method, match, request.query, body)
            response = _json(data, status, self._bucket_headers(now, route, match))
        self.answers[f"{route} {response.status}"] += 1
        if self.limits.delay:
            await asyncio.sleep(self.limits.delay)
        return response

    def _limit(self, now: float, route: str, major: str) -> web.Response | None:
        window = self.window
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= self.limits.global_per_second:
            self.global_429 += 1
            wait = max(0.001, 1.0 - (now - window[0]))
            headers = {"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"}
            headers["Retry-After"] = str(math.ceil(wait))
            return _json(_limited(wait, glob=True), 429, headers)
        window.append(now)
        self.counted.append(now)
        key = f"{route} {major}"
        bucket = self.buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = self.buckets[key] = _Bucket(
                self.limits.route_limit, now + self.limits.route_window
            )
        if bucket.remaining <= 0:
            self.route_429 += 1
            wait = bucket.reset_at - now
            headers = self._bucket_headers(now, route, None, key=key)
            headers |= {"X-RateLimit-Scope": "user", "Retry-After": str(math.ceil(wait))}
            return _json(_limited(wait, glob=False), 429, headers)
        bucket.remaining -= 1
        return None

    def _bucket_headers(
        self, now: float, route: str, match: re.Match[str] | None, *, key: str | None = None
    ) -> dict[str, str]:
        bucket = self.buckets.get(key or f"{route} {match.group(1) if match else ''}")
        if bucket is None:
            return {}
        reset_after = max(0.0, bucket.reset_at - now)
        return {
            "X-RateLimit-Limit": str(self.limits.route_limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hashlib.sha1(route.encode()).hexdigest()[:16],
        }

    def _serve(
        self, now: float, method: str, match: re.Match[str] | None, query: Any, body: Any
    ) -> tuple[int, Any]:
        if match is None:
            return 404, {"message": "404: Not Found", "code": 0}
        channel, messages, message_id, threads = match.groups()
        stored = self.messages.setdefault(channel, [])
        if not messages and method == "GET":
            kind = 11 if channel in self.threads else 0
            return 200, {"id": channel, "type": kind, "guild_id": GUILD_ID, "name": "alerts"}
        if messages and message_id is None and method == "GET":
            return 200, list(reversed(stored))[: int(query.get("limit", "50"))]
        if messages and message_id is None and method == "POST":
            return 200, self._create(now, channel, stored, body or {})
        existing = next((m for m in stored if m["id"] == message_id), None)
        if existing is None:
            return 404, {"message": "Unknown Message", "code": 10008}
        if method == "PATCH" and not threads:
            existing.update({k: v for k, v in (body or {}).items() if k in ("content", "embeds")})
            return 200, existing
        if method == "POST" and threads:
            if message_id in self.threads:
                return 400, {"message": "A thread has already been created", "code": 160004}
            self.threads.add(message_id)
            return 201, {"id": message_id, "type": 11, "parent_id": channel, "guild_id": GUILD_ID}
        return 405, {"message": "405: Method Not Allowed", "code": 0}

    def _create(
        self, now: float, channel: str, stored: list[dict[str, Any]], body: dict[str, Any]
    ) -> dict[str, Any]:
        nonce = body.get("nonce")
        if nonce and body.get("enforce_nonce"):
            for existing in stored:
                if existing.get("nonce") == nonce:
                    self.nonce_dedup += 1
                    return existing
        message = {
            "id": str(next(self.ids)),
            "channel_id": channel,
            "type": 0,
            "content": body.get("content", ""),
            "embeds": body.get("embeds") or [],
            "nonce": nonce,
        }
        stored.append(message)
        title = str((message["embeds"] or [{}])[0].get("title", ""))
        created = Created(now, channel, nonce, message["id"], title)
        self.created.append(created)
        if self.watch:
            self.events.send(created)
        return message


def _template(match: re.Match[str]) -> str:
    _channel, messages, message_id, threads = match.groups()
    return "/channels/:c" + (messages or "") + ("/:id" if message_id else "") + (threads or "")


def _limited(wait: float, *, glob: bool) -> dict[str, Any]:
    return {"message": "You are being rate limited.", "retry_after": round(wait, 3), "global": glob}


def _json(data: Any, status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers=headers | {"Content-Type": "application/json"},
    )


async def _serve(conn: Connection, events: Connection, limits: Limits) -> None:
    server = _Server(limits, events)
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app.router.add_route("*", API_PREFIX + "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    conn.send(runner.addresses[0][1])
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(conn.fileno(), ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            while conn.poll():
                command, argument = conn.recv()
                if command == "stop":
                    return
                if command == "reset":
                    server.reset()
                    conn.send(None)
                elif command == "watch":
                    server.watch = bool(argument)
                    conn.send(None)
                elif command == "stats":
                    conn.send(server.stats())
    finally:
        loop.remove_reader(conn.fileno())
        await runner.cleanup()


def _main(conn: Connection, events: Connection, limits: Limits) -> None:
    asyncio.run(_serve(conn, events, limits))


class FakeDiscordProcess:
    """The fake, served from a forked child; `events` receives a `Created` per message while
    watching (read it with ``loop.add_reader(events.fileno(), …)``)."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self.events, child_events = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_main, args=(child, child_events, self.limits), daemon=True
        )
        self._process.start()
        child.close()
        child_events.close()
        if not self._conn.poll(30):
            self.close()
            raise RuntimeError("the fake Discord did not start within 30 s")
        self.port: int = self._conn.recv()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    def _call(self, command: str, argument: object = None) -> Any:
        self._conn.send((command, argument))
        return self._conn.recv()

    def reset(self) -> None:
        """Forget every message, bucket and counter."""
        self._call("reset")

    def watch(self, on: bool) -> None:
        """Push every created message to `events` (on) or not (off)."""
        self._call("watch", on)

    def follow(self, on_created: Callable[[Created], None]) -> None:
        """Call `on_created` in the running loop for every message created from now on."""
        self.watch(True)

        def read() -> None:
            while self.events.poll():
                on_created(self.events.recv())

        asyncio.get_running_loop().add_reader(self.events.fileno(), read)

    def unfollow(self) -> None:
        """Stop what `follow` started."""
        asyncio.get_running_loop().remove_reader(self.events.fileno())
        self.watch(False)

    def worker(
        self,
        http: ClientSession,
        sessions: async_sessionmaker[AsyncSession],
        catalog: Catalog,
        config: WorkerConfig | None = None,
    ) -> OutboxWorker:
        """The real DiscordSender (with its own GlobalRateLimiter) pointed at this fake, behind
        the real OutboxWorker, built as bot/app.py builds them: on the app's shared HTTP session
        (`new_http_session`), no worker-level limiter."""
        sender = DiscordSender(
            token="bench", api_base=self.api_base, session=http, clock=system_clock
        )
        senders = {"discord": sender}
        return OutboxWorker(
            sessions=sessions, senders=senders, catalog=catalog, clock=system_clock, config=config
        )

    def stats(self) -> dict[str, Any]:
        """answers ('METHOD route status' -> n), counted (arrival times of requests within the
        global limit), created (list of `Created`), global_429, route_429, nonce_dedup."""
        stats: dict[str, Any] = self._call("stats")
        return stats

    def close(self) -> None:
        """Stop the child; terminate it if it does not stop within 10 s."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        self._conn.close()
        self.events.close()

    def __enter__(self) -> FakeDiscordProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def channel_ids(count: int, start: int = 0) -> list[str]:
    """Distinct channel ids, as Discord snowflake strings."""
    return [str(SNOWFLAKE + 7919 * (start + i)) for i in range(count)]


def summarise(stats: dict[str, Any], channels: Sequence[str], t0: float) -> dict[str, Any]:
    """What the fake saw of a fan-out to `channels` that started at `t0` (time.monotonic()).

    The rate counts requests within the global limit (the ones Discord counts against the 50/s)
    from t0 to the last message created in `channels`. The wall time splits into: those
    requests at exactly the limit (`wall_at_limit_s`), stalls (of each gap over one second
    between two of them, the part beyond one second: a 50/s limiter alone never leaves one),
    and the rest (`wall_other_s`: seconds below the limit, e.g. after 429s). `per_second` is
    those requests in each second since t0.
    """
    wanted = set(channels)
    created = [c for c in stats["created"] if c.channel_id in wanted]
    per_channel = collections.Counter(c.channel_id for c in created)
    counted: list[float] = stats["counted"]
    end = max((c.at for c in created), default=t0)
    wall = end - t0
    within = [t for t in counted if t <= end]
    routes: collections.Counter[str] = collections.Counter()
    for answer, n in stats["answers"].items():
        routes[answer.rsplit(" ", 1)[0]] += n
    seconds = collections.Counter(int(t - t0) for t in within)
    rate = len(within) / wall if wall > 0 else 0.0
    stalls = sum(b - a - 1 for a, b in itertools.pairwise(within) if b - a > 1)
    at_limit = len(within) / GLOBAL_PER_SECOND
    return {
        "wall_s": round(wall, 2),
        "wall_at_limit_s": round(at_limit, 2),
        "wall_stalled_s": round(stalls, 2),
        "wall_other_s": round(wall - at_limit - stalls, 2),
        "requests": len(within),
        "request_rate_per_s": round(rate, 2),
        "messages_per_s": round(len(created) / wall, 2) if wall > 0 else 0.0,
        "lost": sum(1 for c in channels if per_channel[c] == 0),
        "duplicates": sum(n - 1 for n in per_channel.values() if n > 1),
        "nonce_dedup": stats["nonce_dedup"],
        "global_429": stats["global_429"],
        "route_429": stats["route_429"],
        "first_request_s": round(counted[0] - t0, 3) if counted else None,
        "requests_by_route": dict(routes),
        "per_second": [seconds[i] for i in range(math.ceil(wall))],
    }
