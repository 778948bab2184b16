"""End to end: `outagebot console` as a subprocess, polling a fake status page on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO
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
    assert "Checking 3 sources of 3 services…" in out
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


# The console in a terminal of its own: a session whose controlling terminal is the pseudo-
# terminal, so Ctrl-C there is SIGINT to the bot, as for a person at a keyboard.
ON_ITS_OWN_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, '-m', 'bot', 'console'])"
)
TERMINAL_SECONDS = 60.0
"""Upper bound on each wait for the terminal: a hang fails the test instead of stalling it."""


def run_on_terminal(tmp_path: Path, catalog: Path, keys: bytes) -> tuple[int, str]:
    """`outagebot console` on a pseudo-terminal: wait for its prompt, type ``keys``, and return
    its exit status and everything the terminal showed."""
    env = bot_env(tmp_path, catalog, PYTHONPATH=str(REPO))  # this checkout's code
    master, terminal = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", ON_ITS_OWN_TERMINAL],
        cwd=tmp_path,
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        start_new_session=True,
    )
    os.close(terminal)
    try:
        shown = read_terminal(master, until=b"help or quit.")
        os.write(master, keys)
        code = process.wait(timeout=TERMINAL_SECONDS)
        shown += read_terminal(master, until=None)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return code, shown.decode(errors="replace")


def read_terminal(master: int, *, until: bytes | None) -> bytes:
    """What the terminal shows until ``until`` appears, or (None) until it closes."""
    shown, deadline = b"", time.monotonic() + TERMINAL_SECONDS
    while until is None or until not in shown:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the terminal did not show {until!r}:\n{shown.decode()}")
        if not select.select([master], [], [], left)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every process holding the terminal has ended
            chunk = b""
        if not chunk:
            if until is None:
                break
            raise AssertionError(f"the terminal closed before {until!r}:\n{shown.decode()}")
        shown += chunk
    return shown


@pytest.mark.parametrize(("keys", "ending"), [(b"quit\n", "Bye."), (b"\x03", "^C")])
async def test_console_on_a_terminal_exits_cleanly(
    tmp_path: Path, keys: bytes, ending: str
) -> None:
    """`quit` and Ctrl-C end the console with status 0, not an interpreter abort (134)."""
    async with FakeStatusServer() as server:
        server.set_json(SUMMARY_PATH, GITHUB)
        catalog = write_catalog(tmp_path / "catalog.toml", {"github": server.url(SUMMARY_PATH)})
        code, shown = await asyncio.to_thread(run_on_terminal, tmp_path, catalog, keys)
    assert "Checking 1 source of 1 service…" in shown  # one, not "1 status pages"
    assert ending in shown
    assert "Fatal Python error" not in shown
    assert "Traceback" not in shown
    assert code == 0, shown
