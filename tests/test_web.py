"""The bot's web server on loopback."""

from __future__ import annotations

import aiohttp

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
