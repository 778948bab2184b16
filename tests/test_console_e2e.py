"""End to end: `outagebot console` as a subprocess, polling a fake status page on loopback."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.conftest import FIXTURES
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import bot_env, write_catalog

GITHUB = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_github_2022-11-25_incident.json").read_text()
)
TWILIO = json.loads(
    (
        FIXTURES
        / "statuspage"
        / "statuspage_summary_twilio_2020-06-16_incidents_and_maintenances.json"
    ).read_text()
)


async def run_console(tmp_path: Path, catalog: Path, stdin: bytes) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        cwd=tmp_path,
        env=bot_env(tmp_path, catalog),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    return process.returncode or 0, out.decode(), err.decode()


async def test_console_answers_status_from_a_polled_page(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json("/github" + SUMMARY_PATH, GITHUB)
        server.set_json("/twilio" + SUMMARY_PATH, TWILIO)
        server.set_script("/down" + SUMMARY_PATH, [Step(status=503)])
        catalog = write_catalog(
            tmp_path / "catalog.toml",
            {
                "github": server.url("/github" + SUMMARY_PATH),
                "twilio": server.url("/twilio" + SUMMARY_PATH),
                "flaky": server.url("/down" + SUMMARY_PATH),
            },
        )
        code, out, err = await run_console(
            tmp_path,
            catalog,
            b"/status\n/status github\n/status twilio-alias\n/status gihtub\nquit\n",
        )
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "Checking 3 status pages" in out
    assert "━━ Service status ━━" in out
    assert "🟠 Github — Partial outage" in out
    assert "🟡 Twilio — Degraded performance" in out
    assert "⚪ Flaky — Unknown (status page unreachable)" in out
    assert "1 status page could not be read." in out
    # /status github: components, the open incident and its latest official update
    assert "━━ Github status ━━" in out
    assert "Incident: Incident with Packages and Pages" in out
    assert "Latest update (" in out
    # an alias resolves; a typo gets a suggestion
    assert "━━ Twilio status ━━" in out
    assert "I don't track “gihtub”. Did you mean Github (github)?" in out
    assert out.rstrip().endswith("Bye.")


async def test_console_survives_any_input(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        server.set_json(SUMMARY_PATH, GITHUB)
        catalog = write_catalog(tmp_path / "catalog.toml", {"github": server.url(SUMMARY_PATH)})
        garbage = (
            b"\xff\xfe\x00\x1b[2J /status \xc3\x28\n"
            + b"/status "
            + b"A" * 100_000
            + b"\n"
            + b"@everyone\n"
        )
        code, out, err = await run_console(
            tmp_path, catalog, garbage + b"/status github\n"
        )  # no quit: EOF ends
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "That line is too long" in out
    assert "I don't know the command “@everyone”" in out
    assert "━━ Github status ━━" in out  # still answering after the junk
