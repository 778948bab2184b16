"""A started bot sets its start-up heap aside from garbage collection, and collects its young
generation less often (`bot.runtime.heap`)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.app import run
from bot.runtime.heap import YOUNG_COLLECTION_THRESHOLD
from bot.settings import Settings
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import write_catalog


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """No frozen objects and the default thresholds before the test; the same after it."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, *thresholds[1:])
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("unfrozen")
async def test_the_started_bot_freezes_what_start_up_built(tmp_path: Path) -> None:
    async with FakeStatusServer() as server:
        catalog = write_catalog(tmp_path / "catalog.toml", {"svc": server.url(SUMMARY_PATH)})
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
            catalog_path=catalog,
            web_port=0,
        )
        assert gc.get_freeze_count() == 0
        running = asyncio.create_task(run(settings, console=False))
        try:
            await asyncio.wait_for(server.wait_for(SUMMARY_PATH), 30)  # started: it polls
            frozen, young = gc.get_freeze_count(), gc.get_threshold()[0]
            os.kill(os.getpid(), signal.SIGTERM)
            assert await asyncio.wait_for(running, 30) == 0
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    # Its modules, mappings and adapters at least: far more than a few stray objects.
    assert frozen > 10_000
    assert young == YOUNG_COLLECTION_THRESHOLD
