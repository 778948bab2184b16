"""Deliveries per second with 1, 2 and 4 delivery worker processes sharing one PostgreSQL outbox.

Each run: a fresh (emptied) database gets N channels subscribed to one service and one incident
staged (one post per channel, `tests/fakes/outbox_child.seed`); then K worker processes
(`python -m tests.fakes.outbox_child`: the app's OutboxWorker with OutboxLink, claiming with
FOR UPDATE SKIP LOCKED) drain it into FakeChatPlatform, a fake platform without rate limits,
served from a forked child so that the benchmark process's CPU is not part of the figure.

Figures: the steady rate (first to last message the platform received) and the wall rate
(workers started to last message, process start-up included), per worker count; the scaling
ratio is the steady rate with K workers over the rate with one. Needs TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from typing import Any

from _common import REPO, databases, write_result
from sqlalchemy import text
from sqlmodel import SQLModel

from bot.store import migrate
from bot.store.engine import create_engine
from tests.fakes.chat_platform import FakeChatPlatform
from tests.fakes.outbox_child import seed

NAME = "scale"


async def _platform(conn: Connection) -> None:
    async with FakeChatPlatform() as platform:
        arrivals: list[float] = []
        original = platform._arrived

        async def arrived() -> None:
            arrivals.append(time.monotonic())
            await original()

        platform._arrived = arrived  # type: ignore[method-assign]
        conn.send(platform.url)
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(conn.fileno(), ready.set)
        while True:
            await ready.wait()
            ready.clear()
            while conn.poll():
                command = conn.recv()
                if command == "stop":
                    return
                posts = platform.posts_per_channel()
                conn.send(
                    {
                        "first": arrivals[0] if arrivals else None,
                        "last": arrivals[-1] if arrivals else None,
                        "requests": len(arrivals),
                        "channels": len(posts),
                        "duplicates": sum(n - 1 for n in posts.values()),
                    }
                )
                arrivals.clear()
                platform.messages.clear()


def _platform_main(conn: Connection) -> None:
    asyncio.run(_platform(conn))


async def _empty(url: str) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
        async with engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


def run(
    url: str, conn: Connection, platform_url: str, workers: int, channels: int
) -> dict[str, Any]:
    """Seed, drain with `workers` processes, report what the platform saw."""
    asyncio.run(_empty(url))
    staged = asyncio.run(seed(url, channels))
    env = os.environ | {"PYTHONPATH": str(REPO)}
    started = time.monotonic()
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.outbox_child", url, platform_url],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    shares = [int((child.communicate(timeout=900)[0] or "0").strip() or 0) for child in children]
    if any(child.returncode for child in children):
        raise RuntimeError(f"a worker failed: exit codes {[c.returncode for c in children]}")
    conn.send("stats")
    seen: dict[str, Any] = conn.recv()
    steady = max(1e-9, (seen["last"] or started) - (seen["first"] or started))
    return {
        "staged": staged,
        "delivered": seen["channels"],
        "lost": staged - seen["channels"],
        "duplicates": seen["duplicates"],
        "steady_per_s": round(seen["channels"] / steady, 1),
        "wall_per_s": round(seen["channels"] / ((seen["last"] or started) - started), 1),
        "handled_per_worker": shares,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300 deliveries (default 5,000)")
    parser.add_argument("--channels", type=int, help="deliveries per run")
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    args = parser.parse_args()
    channels = args.channels or (300 if args.quick else 5000)
    counts = [int(n) for n in args.workers.split(",")]
    figures: dict[str, Any] = {"deliveries": channels, "cpu_count": os.cpu_count()}
    targets = {"lost_max": 0, "duplicates_max": 0}
    with databases() as urls:
        url = urls.get("postgres")
        if url is None:
            print("scale: needs PostgreSQL (set TEST_DATABASE_URL); nothing measured")
            write_result(NAME, figures | {"skipped": "no TEST_DATABASE_URL"}, targets, False)
            return 0
        conn, child = multiprocessing.get_context("fork").Pipe()
        server = multiprocessing.get_context("fork").Process(
            target=_platform_main, args=(child,), daemon=True
        )
        server.start()
        platform_url = conn.recv()
        passed = True
        try:
            print(f"{'workers':>8}{'steady/s':>12}{'wall/s':>10}{'lost':>6}{'dups':>6}  per worker")
            for workers in counts:
                result = run(url, conn, platform_url, workers, channels)
                for key, value in result.items():
                    figures[f"w{workers}_{key}"] = value
                passed &= result["lost"] == 0 and result["duplicates"] == 0
                print(
                    f"{workers:>8}{result['steady_per_s']:>12}{result['wall_per_s']:>10}"
                    f"{result['lost']:>6}{result['duplicates']:>6}  {result['handled_per_worker']}"
                )
        finally:
            conn.send("stop")
            server.join(10)
    base = figures[f"w{counts[0]}_steady_per_s"]
    for workers in counts[1:]:
        figures[f"scaling_{workers}_vs_{counts[0]}"] = round(
            figures[f"w{workers}_steady_per_s"] / base, 2
        )
    write_result(NAME, figures, targets, passed)
    ratios = ", ".join(f"{w} workers {figures[f'scaling_{w}_vs_{counts[0]}']}x" for w in counts[1:])
    print(
        f"scale ({channels} deliveries, PostgreSQL, {os.cpu_count()} cores shared with the "
        f"database and the fake platform): 1 worker {base}/s; {ratios}; "
        f"lost/duplicates 0: {'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
