"""`outagebot run` as a real process: serves /healthz, polls, and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import aiohttp

from tests.conftest import FIXTURES
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
