"""kill -9 in the middle of a fan-out, again and again: every channel ends with exactly one
message per incident, edited to the latest state, with its update in the thread."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.events import DetectionEvent, EventKind
from bot.sources.catalog import parse_catalog
from bot.store import alert_store, catalog_store, migrate, subscription_store
from bot.store.engine import create_engine, session_factory
from bot.store.subscription_store import Scope
from tests.conftest import REPO
from tests.fakes.chat_platform import FakeChatPlatform

CHANNELS = 200
# One in every `make test` (test_chaos_kill.py kills fan-outs 50 more times); `make chaos`: 10.
SCALE = float(os.environ.get("CHAOS_SCALE", "1"))
REPEATS = int(os.environ.get("CRASH_REPEATS", str(max(1, int(SCALE)))))
NOW = datetime.now(UTC) - timedelta(minutes=1)  # the child worker runs on the real clock
CATALOG = parse_catalog(
    {
        "service": [
            {"id": "svc", "name": "Service", "source": [{"kind": "feed", "url": "https://x/f"}]}
        ]
    }
)


def event(kind: EventKind, key: str, status: str, body: str) -> DetectionEvent:
    detail = {
        "status": status,
        "impact": "major",
        "update_status": status,
        "update_body": body,
        "update_at": NOW.isoformat(),
        "started_at": NOW.isoformat(),
    }
    return DetectionEvent(
        kind=kind,
        service_id="svc",
        at=NOW,
        key=key,
        incident_id="inc",
        title="Outage",
        detail=detail,
    )


async def seed(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        for index in range(CHANNELS):
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope("fakechat", f"guild-{index % 7}"),
                channel_id=f"c{index}",
                service_id="svc",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=False,
                maintenance=True,
                now=NOW,
            )
        await alert_store.record_alert_events(
            session=session,
            events=[event(EventKind.INCIDENT_OPENED, "opened", "investigating", "Looking")],
            now=NOW,
        )
        await alert_store.record_alert_events(
            session=session,
            events=[event(EventKind.INCIDENT_UPDATED, "u1", "identified", "Found it")],
            now=NOW,
        )
        await session.commit()
    await engine.dispose()


async def run_child(database_url: str, platform: FakeChatPlatform, kill_after: int | None) -> int:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.fanout_child",
        database_url,
        platform.url,
        cwd=REPO,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    done = asyncio.create_task(child.wait())
    if kill_after is not None:
        reached = asyncio.create_task(platform.wait_for_requests(kill_after))
        await asyncio.wait({done, reached}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
        reached.cancel()
        if not done.done():
            child.send_signal(signal.SIGKILL)  # the point of this test: no goodbye, no cleanup
    code = await asyncio.wait_for(done, timeout=120)
    assert child.stderr is not None
    err = (await child.stderr.read()).decode()
    assert "Traceback" not in err, err
    return code


@pytest.mark.slow
@pytest.mark.parametrize("repeat", range(REPEATS))
async def test_kill_9_mid_fan_out_posts_each_channel_exactly_once(
    tmp_path: Path, repeat: int
) -> None:
    rng = random.Random(repeat)
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await seed(database_url)
    kills = 0
    async with FakeChatPlatform() as platform:
        while True:
            # Kill at a random request count ahead of where the platform is now.
            target = platform.requests + rng.randint(1, 150)
            code = await run_child(database_url, platform, kill_after=target if kills < 6 else None)
            if code == 0:
                break
            assert code == -signal.SIGKILL
            kills += 1
        posts = platform.posts_per_channel()
        assert kills >= 1
        assert len(posts) == CHANNELS, f"channels without a post: {CHANNELS - len(posts)}"
        assert set(posts.values()) == {1}, "a channel got its alert twice"
        parents = [m for m in platform.messages.values() if m.key.startswith("post:")]
        # Showing the latest state: posted with it, or edited to it (a post rendered after the
        # update already carries it, and its edit then has nothing new to say).
        assert all("Found it" in m.text for m in parents)
        assert all(len(m.replies) == 1 for m in parents)  # the update, once, in its thread
