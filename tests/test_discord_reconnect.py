"""The Discord adapter stays up: an unparsable event or an unreachable API at start-up means
backoff and another try, while `/readyz` names Discord as not ready."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.adapters.discord.adapter import Backoff
from bot.app import App, open_app
from bot.runtime.metrics import Metrics
from bot.runtime.ops_endpoints import Ops, not_ready
from tests.conftest import FakeClock
from tests.discord_harness import (
    CALLBACK,
    WatchedDiscordAdapter,
    config_for,
    embed_of,
    settings_for,
    slash,
)
from tests.fakes.discord_server import DROP_BEFORE, FakeDiscord


class GatedSleep:
    """The adapter's backoff sleep: records each delay and waits until the test releases it."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.waiting = asyncio.Event()
        self._release = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.waiting.set()
        await self._release.wait()
        self._release.clear()

    async def next_backoff(self) -> None:
        """Until the adapter is waiting out a backoff."""
        await asyncio.wait_for(self.waiting.wait(), 5)

    def release(self) -> None:
        self.waiting.clear()
        self._release.set()


@dataclass
class Rig:
    fake: FakeDiscord
    app: App
    adapter: WatchedDiscordAdapter
    sleep: GatedSleep
    ops: Ops

    async def answers_status(self) -> bool:
        count = len(self.fake.matching("POST", CALLBACK)) + 1
        await self.fake.dispatch("INTERACTION_CREATE", slash("status"))
        call = await self.fake.wait_for_call("POST", CALLBACK, count=count)
        return bool(embed_of(call.json)["title"] == "Service status")


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeDiscord() as fake, open_app(settings_for(tmp_path), clock=clock) as app:
        sleep = GatedSleep()
        adapter = WatchedDiscordAdapter(
            config=config_for(fake, tmp_path / "s.sha256", start_wait_seconds=1),
            deps=app.deps,
            clock=clock,
            backoff=Backoff(first_seconds=2, max_seconds=5, jitter=lambda: 1.0),
            sleep=sleep,
        )
        ops = Ops(engine=app.engine, sessions=app.deps.sessions, metrics=Metrics())
        ops.scheduler_running, ops.adapters = (lambda: True), [adapter]
        try:
            yield Rig(fake=fake, app=app, adapter=adapter, sleep=sleep, ops=ops)
        finally:
            await adapter.stop()


async def test_an_unparsable_event_reconnects_after_a_backoff(rig: Rig) -> None:
    await rig.adapter.start()
    await asyncio.wait_for(rig.adapter.wait_until_ready(), 5)
    assert await not_ready(rig.ops) == {}
    await rig.fake.dispatch_unparsable()
    await rig.sleep.next_backoff()
    assert not rig.adapter.ready
    problems = await not_ready(rig.ops)
    assert list(problems) == ["discord"]
    assert problems["discord"] == "gateway failed (KeyError); connecting again in 2 s"
    rig.sleep.release()
    await rig.fake.wait_for_gateway(identifies=2)  # a new session, not a resume of the old
    await asyncio.wait_for(rig.adapter.wait_until_ready(), 5)
    assert await not_ready(rig.ops) == {}
    assert await rig.answers_status()
    assert rig.sleep.delays == [2]


async def test_an_unreachable_api_at_start_is_retried_with_capped_backoff(rig: Rig) -> None:
    rig.fake.inject = lambda call: DROP_BEFORE  # every REST request: the connection drops
    await rig.adapter.start()  # returns although Discord cannot be reached
    problems: list[str] = []
    for _ in range(4):
        await rig.sleep.next_backoff()
        problems.append((await not_ready(rig.ops))["discord"])
        rig.sleep.release()
    await rig.sleep.next_backoff()
    assert rig.sleep.delays == [2, 4, 5, 5, 5]  # doubling, capped at max_seconds
    assert problems[0].startswith("API unreachable (")
    rig.fake.inject = None  # Discord is back
    rig.sleep.release()
    await rig.fake.wait_for_gateway()
    await asyncio.wait_for(rig.adapter.wait_until_ready(), 5)
    assert await not_ready(rig.ops) == {}
    assert await rig.answers_status()


def test_backoff_is_jittered_between_half_and_all_of_its_ceiling() -> None:
    low, high = Backoff(jitter=lambda: 0.0), Backoff(jitter=lambda: 1.0)
    assert [low.delay(n) for n in range(3)] == [1.0, 2.0, 4.0]
    assert [high.delay(n) for n in range(3)] == [2.0, 4.0, 8.0]
    assert high.delay(100) == 300.0
