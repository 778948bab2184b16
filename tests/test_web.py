"""The bot's web server on loopback."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from bot.web.server import WebServer, create_web_app
from tests.conftest import FakeClock


async def test_healthz(clock: FakeClock) -> None:
    server = WebServer(create_web_app(clock=clock), host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{server.bound_port}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {
                    "status": "ok",
                    "started_at": "2026-11-27T12:00:00Z",
                }
            async with http.get(f"http://127.0.0.1:{server.bound_port}/nope") as response:
                assert response.status == 404
    finally:
        await server.stop()


async def stalled_connection(port: int, *parts: bytes) -> float:
    """Send the parts of an unfinished request, then wait for the server to hang up; the
    seconds that took. Gives up (TimeoutError) after 5 s."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed without an answer
        return loop.time() - started
    finally:
        writer.close()


@pytest.mark.parametrize(
    "parts",
    [
        (b"GET /heal",),
        (b"GET /healthz HTTP/1.1\r\n", b"Host: 127.0.0.1\r\nX-Slow: 1\r\n"),
        (b"",),  # connects and says nothing
    ],
    ids=["half a request line", "headers without the blank line", "silence"],
)
async def test_a_connection_that_never_finishes_its_headers_is_closed(
    clock: FakeClock, parts: tuple[bytes, ...]
) -> None:
    server = WebServer(create_web_app(clock=clock), host="127.0.0.1", port=0, header_timeout=0.2)
    await server.start()
    assert server.bound_port is not None
    try:
        stalled = asyncio.create_task(stalled_connection(server.bound_port, *parts))
        # Meanwhile a normal request, on another connection, is served.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.bound_port}/healthz") as response,
        ):
            assert response.status == 200
        assert not stalled.done()
        assert 0.15 <= await stalled < 5
    finally:
        await server.stop()


async def test_a_request_whose_headers_arrive_in_pieces_in_time_is_served(
    clock: FakeClock,
) -> None:
    server = WebServer(create_web_app(clock=clock), host="127.0.0.1", port=0, header_timeout=0.5)
    await server.start()
    assert server.bound_port is not None
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.bound_port)
        for part in (
            b"GET /healthz HTTP/1.1\r\nHo",
            b"st: 127.0.0.1\r\n\r",
            b"\nGET /nope HTTP/1.1",
        ):
            writer.write(part)
            await writer.drain()
        writer.write(b"\r\nHost: x\r\nConnection: close\r\n\r\n")  # a second request, pipelined
        async with asyncio.timeout(5):
            answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 OK")
        assert b"HTTP/1.1 404 Not Found" in answer
    finally:
        await server.stop()
