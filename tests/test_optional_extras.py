"""The `postgres` and `charts` extras: without them the bot runs on SQLite, in text, says why."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.charts.model import ReportSeries
from bot.charts.optional_render import OptionalChartRenderer
from tests.conftest import REPO

NOW = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)

# Imports every module of bot/ and cogs/ (what `outagebot run` loads, and more) with asyncpg
# hidden, then runs one command against DATABASE_URL.
WITHOUT_ASYNCPG = """
import importlib, pkgutil, sys
sys.modules["asyncpg"] = None  # what a missing package looks like to `import asyncpg`
import bot, cogs
for package in (bot, cogs):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not module.name.endswith("__main__") and ".migrations" not in module.name:
            importlib.import_module(module.name)
from bot.cli import main
sys.exit(main(["db", "upgrade"]))
"""


def _run_without_asyncpg(tmp_path: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    env["DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_ASYNCPG],
        cwd=tmp_path,  # no .env of the checkout
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_sqlite_needs_no_asyncpg(tmp_path: Path) -> None:
    result = _run_without_asyncpg(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "bot.db").exists()


def test_postgresql_without_asyncpg_names_the_extra(tmp_path: Path) -> None:
    result = _run_without_asyncpg(tmp_path, "postgresql+asyncpg://bot@127.0.0.1:9/outagebot")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "outagebot: DATABASE_URL names PostgreSQL, but its driver is not installed: "
        "pip install 'outagebot[postgres]'"
    ]


def _series(service_id: str) -> ReportSeries:
    return ReportSeries(
        service_id=service_id,
        start=NOW - timedelta(hours=1),
        end=NOW,
        bucket=timedelta(minutes=15),
        counts=(0, 3, 9, 4),
        usual=(1.0, 1.0, 1.0, 1.0),
    )


def test_without_matplotlib_there_is_no_chart_and_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # What a missing package looks like to `import matplotlib…`, even after a test drew a chart.
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.delitem(sys.modules, "bot.charts.render", raising=False)
    render = OptionalChartRenderer()
    with caplog.at_level(logging.WARNING, logger="bot.charts.optional_render"):
        assert render(_series("openai-api")) is None
        assert render(_series("gemini")) is None
    said = [r.getMessage() for r in caplog.records if r.name == "bot.charts.optional_render"]
    assert len(said) == 1
    assert "pip install 'outagebot[charts]'" in said[0]


def test_with_matplotlib_the_chart_is_drawn() -> None:
    chart = OptionalChartRenderer()(_series("openai-api"))
    assert chart is not None
    assert chart.png.startswith(b"\x89PNG")
