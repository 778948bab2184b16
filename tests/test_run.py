"""`outagebot run` as a real process: serves /healthz, polls, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from tests.fakes.discord_server import DROP_BEFORE, FakeDiscord
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import (
    bot_env,
    read_until,
    running_bot_process,
    serve_iterable,
    start_bot_run,
)


async def test_run_serves_health_polls_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        catalog = serve_iterable(server, tmp_path)
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="INFO",
            CONSOLE="off",
            STATUSPAGE_WEBHOOK_SECRETS="iterable:super-secret-token-1234",
        )
        async with running_bot_process(tmp_path, env) as bot:
            await asyncio.wait_for(server.wait_for(SUMMARY_PATH), 30)
            await bot.read_until(r"iterable is now operational")
            async with (
                aiohttp.ClientSession() as http,
                http.get(bot.base_url + "/healthz") as response,
            ):
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
            assert await bot.stop() == 0
    log = bot.log
    assert "shutting down" in log
    assert "Traceback" not in log
    assert "super-secret-token" not in log  # tokens are never logged
    assert "Discord is off: set DISCORD_TOKEN" in log


async def test_busy_web_port_is_reported_not_fatal(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        catalog = serve_iterable(server, tmp_path)
        env = bot_env(
            tmp_path, catalog, CONSOLE="on", WEB_PORT=str(server.port)
        )  # port already taken
        process = await start_bot_run(tmp_path, env, stdin=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(b"/status iterable\nquit\n"), 60)
    assert process.returncode == 0
    assert "web server not started" in err.decode()
    assert "WEB_PORT" in err.decode()
    assert "━━ Iterable status ━━" in out.decode()


async def read_until_all(
    stream: asyncio.StreamReader, patterns: list[str], seen: list[str]
) -> None:
    """Read lines until each pattern has matched a line (one read earlier counts)."""
    for pattern in patterns:
        if not any(re.search(pattern, line) for line in seen):
            await asyncio.wait_for(read_until(stream, pattern, seen), 30)


async def test_discord_away_at_start_leaves_the_rest_serving_until_it_is_back(
    tmp_path: Path,
) -> None:
    async with FakeStatusServer() as server, FakeDiscord() as discord:
        discord.inject = lambda call: DROP_BEFORE  # Discord's API cannot be reached
        catalog = serve_iterable(server, tmp_path)
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="INFO",
            CONSOLE="off",
            DISCORD_TOKEN="run-test-discord-token",
            DISCORD_API_BASE=discord.api_base,
            DISCORD_GATEWAY_URL=discord.gateway_url,
        )
        async with running_bot_process(tmp_path, env) as bot:
            await read_until_all(
                bot.stderr,
                [r"Discord API unreachable", r"iterable is now operational"],  # polls go on
                bot.seen,
            )
            async with aiohttp.ClientSession() as http:
                async with http.get(bot.base_url + "/readyz") as response:
                    down = (response.status, await response.json())
                discord.inject = None  # Discord is back
                await read_until_all(bot.stderr, [r"Discord gateway ready"], bot.seen)
                async with http.get(bot.base_url + "/readyz") as response:
                    up = (response.status, await response.json())
            assert await bot.stop() == 0
    assert down[0] == 503
    assert list(down[1]["problems"]) == ["discord"]
    assert down[1]["problems"]["discord"].startswith("API unreachable")
    assert up == (200, {"status": "ready"})
    assert "Traceback" not in bot.log
