"""`outagebot run` as a real process: serves /healthz, polls, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from pathlib import Path

import aiohttp

from tests.conftest import FIXTURES
from tests.fakes.discord_server import DROP_BEFORE, FakeDiscord
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import bot_env, read_until, start_bot_run, write_catalog

ITERABLE = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_iterable_2017-08-22.json").read_text()
)


async def test_run_serves_health_polls_and_stops_on_sigterm(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json(SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(tmp_path / "catalog.toml", {"iterable": server.url(SUMMARY_PATH)})
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="INFO",
            CONSOLE="off",
            STATUSPAGE_WEBHOOK_SECRETS="iterable:super-secret-token-1234",
        )
        process = await start_bot_run(tmp_path, env)
        assert process.stderr is not None
        seen: list[str] = []
        try:
            port = int(
                (
                    await asyncio.wait_for(
                        read_until(process.stderr, r"web server on http://[\d.]+:(\d+)", seen), 30
                    )
                ).group(1)
            )
            await asyncio.wait_for(server.wait_for(SUMMARY_PATH), 30)
            await asyncio.wait_for(
                read_until(process.stderr, r"iterable is now operational", seen), 30
            )
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{port}/healthz") as response,
            ):
                assert response.status == 200
                assert (await response.json())["status"] == "ok"
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        rest = (await process.stderr.read()).decode()
    log = "".join(seen) + rest
    assert "shutting down" in log
    assert "Traceback" not in log
    assert "super-secret-token" not in log  # tokens are never logged
    assert "Discord is off: set DISCORD_TOKEN" in log


async def test_busy_web_port_is_reported_not_fatal(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json(SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(tmp_path / "catalog.toml", {"iterable": server.url(SUMMARY_PATH)})
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
        server.set_json(SUMMARY_PATH, ITERABLE)
        discord.inject = lambda call: DROP_BEFORE  # Discord's API cannot be reached
        catalog = write_catalog(tmp_path / "catalog.toml", {"iterable": server.url(SUMMARY_PATH)})
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="INFO",
            CONSOLE="off",
            DISCORD_TOKEN="run-test-discord-token",
            DISCORD_API_BASE=discord.api_base,
            DISCORD_GATEWAY_URL=discord.gateway_url,
        )
        process = await start_bot_run(tmp_path, env)
        assert process.stderr is not None
        seen: list[str] = []
        try:
            found = await asyncio.wait_for(
                read_until(process.stderr, r"web server on http://[\d.]+:(\d+)", seen), 30
            )
            base = f"http://127.0.0.1:{found.group(1)}"
            await read_until_all(
                process.stderr,
                [r"Discord API unreachable", r"iterable is now operational"],  # polls go on
                seen,
            )
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/readyz") as response:
                    down = (response.status, await response.json())
                discord.inject = None  # Discord is back
                await read_until_all(process.stderr, [r"Discord gateway ready"], seen)
                async with http.get(base + "/readyz") as response:
                    up = (response.status, await response.json())
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), 30) == 0
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        rest = (await process.stderr.read()).decode()
    assert down[0] == 503
    assert list(down[1]["problems"]) == ["discord"]
    assert down[1]["problems"]["discord"].startswith("API unreachable")
    assert up == (200, {"status": "ready"})
    assert "Traceback" not in "".join(seen) + rest
