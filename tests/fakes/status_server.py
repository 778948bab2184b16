"""A fake status page server on loopback: recorded payloads, scripted timelines and misbehaviour.

Tests use it as an async context manager; ``python -m tests.fakes.status_server FILE.json
[--port N]`` serves a file at ``/api/v2/summary.json`` for trying the bot by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import socket
import ssl
import struct
import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

SUMMARY_PATH = "/api/v2/summary.json"
_CHUNK_BYTES = 64 * 1024
_FILLER = b"x" * _CHUNK_BYTES


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted response: a normal answer unless a misbehaviour flag is set."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    etag: str | None = None  # sent, and compared with If-None-Match (→ 304)
    last_modified: datetime | None = None  # sent, and compared with If-Modified-Since (→ 304)
    hang: bool = False  # never answer; released when the server closes
    reset: bool = False  # drop the connection with a TCP reset, without answering
    huge_bytes: int = 0  # stream this many filler bytes instead of `body`, never all in memory
    declare_length: bool = False  # with huge_bytes: send Content-Length instead of chunking
    cut_at: int | None = None  # stop the body after this many bytes...
    after_cut: Literal["close", "hang"] = "close"  # ...then drop the connection, or stall
    trickle: float = 0.0  # slowloris: seconds between one-byte writes of `body`

    @classmethod
    def json(
        cls, payload: object, *, status: int = 200, last_modified: datetime | None = None
    ) -> Step:
        """A JSON body (bytes are served verbatim) with a strong ETag and Last-Modified.

        Last-Modified defaults to now; pass it when a test revalidates by date alone, since two
        payloads set within one second would otherwise share it (HTTP dates have no fraction).
        """
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        modified = last_modified or datetime.now(UTC).replace(microsecond=0)
        return cls(status=status, body=body, etag=etag, last_modified=modified)

    @classmethod
    def truncated_json(cls, payload: object, *, keep: float = 0.5) -> Step:
        """Valid HTTP carrying JSON cut short, as a status page mid-deploy may serve."""
        body = json.dumps(payload).encode()
        return cls(body=body[: int(len(body) * keep)])

    @classmethod
    def html(cls, text: str, *, status: int = 200) -> Step:
        """An HTML page, e.g. a CDN error or login page where JSON was expected."""
        return cls(status=status, body=text.encode(), content_type="text/html; charset=utf-8")

    @classmethod
    def redirect(cls, location: str, *, status: int = 302) -> Step:
        """A redirect; pointing it at its own path makes a loop."""
        return cls(status=status, content_type="text/plain", headers={"Location": location})


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request the server received; `headers` is case-insensitive."""

    path: str
    method: str
    headers: CIMultiDictProxy[str]


class FakeStatusServer:
    """An aiohttp server on 127.0.0.1 replaying scripted responses per path (404 elsewhere)."""

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context  # set: serve HTTPS with its certificate
        self._scripts: dict[str, deque[Step]] = {}
        self._closing = asyncio.Event()
        self._arrivals = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.requests: list[RecordedRequest] = []
        self.bytes_sent: dict[str, int] = {}  # body bytes handed to the socket, per streamed path

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # A short shutdown timeout bounds teardown even if a handler ignores the closing event.
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, shutdown_timeout=2.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()  # releases hanging handlers so shutdown does not wait on them
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        """The bound port (known once the server has started)."""
        return self._port

    def url(self, path: str) -> str:
        """Absolute URL of `path` on this server."""
        scheme = "https" if self._ssl is not None else "http"
        return f"{scheme}://{self._host}:{self._port}{path}"

    def set_script(self, path: str, steps: Iterable[Step]) -> None:
        """Answer `path` with these steps in order, each once, the last one forever."""
        queue = deque(steps)
        if not queue:
            raise ValueError("a script needs at least one step")
        self._scripts[path] = queue

    def set_json(self, path: str, payload: object) -> None:
        """Serve `payload` as JSON with a strong ETag and Last-Modified, honouring revalidation."""
        self.set_script(path, [Step.json(payload)])

    def set_body(
        self, path: str, body: bytes, *, status: int = 200, content_type: str = "application/json"
    ) -> None:
        """Serve fixed bytes with no validators."""
        self.set_script(path, [Step(status=status, body=body, content_type=content_type)])

    def count(self, path: str) -> int:
        """How many requests `path` received."""
        return sum(1 for request in self.requests if request.path == path)

    async def wait_for(self, path: str, count: int = 1) -> None:
        """Return once `path` has received at least `count` requests (no polling, no sleeps)."""
        async with self._arrivals:
            await self._arrivals.wait_for(lambda: self.count(path) >= count)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            RecordedRequest(
                request.path, request.method, CIMultiDictProxy(CIMultiDict(request.headers))
            )
        )
        async with self._arrivals:
            self._arrivals.notify_all()
        script = self._scripts.get(request.path)
        if script is None:
            return web.Response(status=404, text="not scripted\n")
        step = script[0] if len(script) == 1 else script.popleft()
        if step.hang:
            await self._closing.wait()
            return web.Response(status=503, text="server closing\n")
        if step.reset:
            _reset_connection(request)
            # Preparing this fails on the dead transport, which aiohttp treats as a client leaving.
            return web.Response()
        if step.trickle > 0:
            return await self._trickle(request, step)
        if step.huge_bytes or step.cut_at is not None:
            return await self._stream(request, step)
        headers = CIMultiDict({"Content-Type": step.content_type, **step.headers})
        if step.etag is not None:
            headers["ETag"] = step.etag
        if step.last_modified is not None:
            headers["Last-Modified"] = format_datetime(step.last_modified, usegmt=True)
        if step.status == 200 and _not_modified(request, step):
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)
        return web.Response(status=step.status, body=step.body, headers=headers)

    async def _stream(self, request: web.Request, step: Step) -> web.StreamResponse:
        total = step.huge_bytes or len(step.body)
        limit = total if step.cut_at is None else min(step.cut_at, total)
        headers = CIMultiDict({"Content-Type": step.content_type, **step.headers})
        response = web.StreamResponse(status=step.status, headers=headers)
        if step.huge_bytes and not step.declare_length:
            response.enable_chunked_encoding()
        else:
            response.content_length = total
        sock = request.transport.get_extra_info("socket") if request.transport else None
        if sock is not None:
            # A small send buffer keeps `bytes_sent` close to what the client actually took.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _CHUNK_BYTES)
        await response.prepare(request)
        sent = 0
        while sent < limit and not self._closing.is_set():
            size = min(_CHUNK_BYTES, limit - sent)
            chunk = _FILLER[:size] if step.huge_bytes else step.body[sent : sent + size]
            try:
                await response.write(chunk)
            except ConnectionError:
                # The client gave up (as a capped reader should); returning lets aiohttp drop
                # the request quietly instead of logging it as a handler error.
                return response
            sent += size
            self.bytes_sent[request.path] = self.bytes_sent.get(request.path, 0) + size
        if sent < total:
            if step.after_cut == "hang":
                await self._closing.wait()
            if request.transport is not None:
                request.transport.abort()
            return response
        await response.write_eof()
        return response

    async def _trickle(self, request: web.Request, step: Step) -> web.StreamResponse:
        """Send the body a byte at a time, `step.trickle` seconds apart (a slowloris server)."""
        headers = CIMultiDict({"Content-Type": step.content_type, **step.headers})
        response = web.StreamResponse(status=step.status, headers=headers)
        response.content_length = len(step.body)
        await response.prepare(request)
        for index in range(len(step.body)):
            try:
                await response.write(step.body[index : index + 1])
            except ConnectionError:
                return response  # the client timed out and left, as it should
            # The pause is the misbehaviour itself; closing the server cuts it short.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), step.trickle)
            if self._closing.is_set():
                break
        if request.transport is not None and self._closing.is_set():
            request.transport.abort()
            return response
        await response.write_eof()
        return response


def _not_modified(request: web.Request, step: Step) -> bool:
    """RFC 9110 revalidation: If-None-Match wins; If-Modified-Since only without it."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        if step.etag is None:
            return False
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or step.etag.removeprefix("W/") in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since is None or step.last_modified is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and step.last_modified <= since


def _reset_connection(request: web.Request) -> None:
    """Close with RST rather than FIN, as a crashing proxy or a firewall does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # Linger on with a zero timeout makes close() send RST and discard unsent data.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _serve_file(body: bytes, port: int) -> None:
    async with FakeStatusServer(port=port) as server:
        server.set_script(SUMMARY_PATH, [Step.json(body)])
        print(f"serving {server.url(SUMMARY_PATH)} (Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a JSON file at /api/v2/summary.json until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.status_server",
        description=f"Serve a Statuspage JSON file at {SUMMARY_PATH} on 127.0.0.1.",
    )
    parser.add_argument("file", type=Path, help="JSON payload to serve")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: any free)")
    args = parser.parse_args(argv)
    try:
        body = args.file.read_bytes()
        json.loads(body)
    except OSError as exc:
        parser.error(f"cannot read {args.file}: {exc.strerror}")
    except ValueError as exc:
        parser.error(f"{args.file} is not JSON: {exc}")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the documented way to stop
        asyncio.run(_serve_file(body, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
