"""The dashboard in a real browser: headless Chromium loads pages served over seeded data.

Chromium is Debian's ``chromium`` package; the session fixture installs it when it is missing
and the tests run as root (CI), and skips with the reason otherwise. Screenshots land in
``tests/artifacts/`` for a human to review.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store import migrate
from bot.store.engine import create_engine
from bot.web.layout import REFRESH_SECONDS
from tests.conftest import REPO
from tests.web_seed import EVIL_TITLE, seeded_web

ARTIFACTS = REPO / "tests" / "artifacts"
INSTALL_TIMEOUT = 900
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--enable-logging=stderr",
    "--v=0",
)


def _find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium binary, installed with apt-get when missing and we may."""
    found = _find_chromium()
    if found:
        return found
    # .ci/run installs chromium; in CI a missing browser is a failure, never a quiet skip.
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI: .ci/run should have installed it")
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and cannot be (needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Waits for another apt run to finish instead of failing on its lock.
    lock = ("-o", "DPkg::Lock::Timeout=300")
    for command in (
        ["apt-get", *lock, "update"],
        ["apt-get", *lock, "install", "-y", "chromium"],
    ):
        result = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )
        if result.returncode != 0:
            pytest.skip(f"installing chromium failed: {' '.join(command)}: {result.stderr[-500:]}")
    found = _find_chromium()
    if not found:
        pytest.skip("apt-get installed chromium but no chromium binary is on PATH")
    return found


async def _browse(binary: str, profile: Path, *args: str, timeout: float = 120) -> tuple[str, str]:
    # Async: the server under test runs on this same event loop.
    process = await asyncio.create_subprocess_exec(
        binary,
        *FLAGS,
        f"--user-data-dir={profile}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode(errors="replace"), err.decode(errors="replace")


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _page_errors(stderr: str) -> list[str]:
    # Script errors, and anything the Content-Security-Policy blocked (a missed inline style).
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line and ("Uncaught" in line or "Refused to" in line)
    ]


@pytest.fixture
async def sqlite_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """One database is enough here: the store queries run on both backends in test_web_api."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'browser.db'}")
    await migrate.upgrade(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_dashboard_renders_in_chromium(
    chromium: str, sqlite_engine: AsyncEngine, tmp_path: Path
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with seeded_web(sqlite_engine) as seeded:
        # Virtual time lets the once-a-minute refresh run without waiting a minute.
        dom, stderr = await _browse(
            chromium,
            tmp_path / "profile",
            f"--virtual-time-budget={(REFRESH_SECONDS + 5) * 1000}",
            "--dump-dom",
            seeded.base + "/",
        )
        assert _page_errors(stderr) == []
        assert 'data-refreshed="1"' in dom  # the script fetched a fresh <main> and swapped it
        assert "Service status" in dom
        assert "1 of 2 services report problems." in dom
        assert "Partial outage" in dom
        assert "Operational" in dom
        assert "Early warning: users report problems since" in dom
        assert "User reports in the last hour: 5 (usually 0.1 an hour)" in dom
        # The hostile title is text in the DOM, never an element that ran.
        assert "&lt;script&gt;alert('pwned')&lt;/script&gt; Packages &amp; Pages" in dom
        assert EVIL_TITLE not in dom

        detail, stderr = await _browse(
            chromium, tmp_path / "profile", "--dump-dom", seeded.base + "/service/github"
        )
        assert _page_errors(stderr) == []
        assert detail.count('<li><p class="meta"><time') == 7  # every official update
        assert "Alternatives working now" in detail
        assert "Calm Git" in detail
        assert 'src="/service/github/chart.png"' in detail

        shots = {
            "dashboard.png": ("/", "1280,1400"),
            "dashboard-phone.png": ("/", "390,1400"),
            "service.png": ("/service/github", "1280,2600"),
            "service-phone.png": ("/service/github", "390,3600"),
        }
        for name, (path, size) in shots.items():
            target = ARTIFACTS / name
            target.unlink(missing_ok=True)
            await _browse(
                chromium,
                tmp_path / "profile",
                f"--screenshot={target}",
                f"--window-size={size}",
                seeded.base + path,
            )
            width, height = _png_size(target)
            assert (width, height) == tuple(int(n) for n in size.split(","))
