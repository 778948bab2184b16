"""Memory and start-up of one `outagebot run` process with 300 sources and 10,000 subscriptions.

A migrated database gets a catalog of 300 services (one Statuspage source each, served by the
fake-page farm: recorded GitHub, Iterable and Twilio pages, renamed) and 10,000 Discord channel
subscriptions spread over them. Then the real process starts (`python -m bot run`, console off,
no chat tokens). Figures: start-up time to ready (process spawned → `/healthz` answers), time
until every page was read once, and the process's resident memory (VmRSS) after that first full
round and after a second one (not with --quick), with its peak (VmHWM). SQLite, and PostgreSQL when
TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from _common import REPO, Farm, databases, farm_layout, varied_page, write_result

from bot.sources.catalog import load_catalog
from bot.store import catalog_store, migrate
from bot.store.engine import create_engine, session_factory
from bot.store.models import SubscriptionRow

NAME = "footprint"
TARGET_MB = 150
SOURCES, SUBSCRIPTIONS = 300, 10_000


def write_catalog(path: Path, farm: Farm, pages: int) -> Path:
    blocks = [
        f'[[service]]\nid = "s{i}"\nname = "S{i}"\n\n[[service.source]]\nkind = "statuspage"\n'
        f'url = "{farm.summary_url(i)}"\n'
        for i in range(pages)
    ]
    path.write_text("\n".join(blocks), encoding="utf-8")
    return path


async def prepare(url: str, catalog: Path, pages: int, subscriptions: int) -> None:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with session_factory(engine)() as session:
            await catalog_store.sync_catalog(session=session, catalog=load_catalog(catalog))
            now = datetime.now(UTC)
            session.add_all(
                SubscriptionRow(
                    platform="discord",
                    community_id=str(10**17 + index // 10),
                    channel_id=str(10**18 + index),
                    service_id=f"s{index % pages}",
                    created_at=now,
                )
                for index in range(subscriptions)
            )
            await session.commit()
    finally:
        await engine.dispose()


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))  # type: ignore[return-value]


async def wait_for(condition: Any, limit: float, what: str) -> float:
    started = time.monotonic()
    while not await condition():
        if time.monotonic() - started > limit:
            raise RuntimeError(f"{what}: not within {limit} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def measure(
    url: str, farm: Farm, tmp: Path, pages: int, subscriptions: int, rounds: int
) -> dict[str, Any]:
    catalog = write_catalog(tmp / "catalog.toml", farm, pages)
    await prepare(url, catalog, pages, subscriptions)
    farm.stats()  # reset the counters
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    env |= {
        "DATABASE_URL": url,
        "CATALOG_PATH": str(catalog),
        "WEB_PORT": "0",
        "CONSOLE": "off",
        "LOG_LEVEL": "INFO",
        "POLL_INTERVAL_SECONDS": "20",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp / "bot.log"
    spawned = time.monotonic()
    with open(log, "wb") as sink:  # noqa: ASYNC230 - nothing else runs meanwhile
        process = subprocess.Popen(  # noqa: ASYNC220 - Popen, so /proc/<pid> is the bot itself
            [sys.executable, "-m", "bot", "run"],
            cwd=tmp,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    served = [0]
    try:

        async def port() -> bool:
            return bool(re.search(r"web server on http://[\d.]+:\d+", log.read_text()))

        await wait_for(port, 60, "web server")
        match = re.search(r"web server on http://[\d.]+:(\d+)", log.read_text())
        assert match is not None
        health = f"http://127.0.0.1:{match.group(1)}/healthz"
        async with aiohttp.ClientSession() as http:

            async def healthy() -> bool:
                try:
                    async with http.get(health) as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_for(healthy, 60, "/healthz")
        ready_s = time.monotonic() - spawned

        def count_summaries() -> int:
            served[0] += sum(n for k, n in farm.stats().items() if k.startswith("summary.json"))
            return served[0]

        async def round_done(rounds: int) -> bool:
            return count_summaries() >= rounds * pages

        await wait_for(lambda: round_done(1), 120, "first round")
        first_round_s = time.monotonic() - spawned
        rss_first, _ = memory_mb(process.pid)
        if rounds > 1:  # the steady state: every page read again, now with a 304 mostly
            await wait_for(lambda: round_done(rounds), 120, "second round")
        rss, peak = memory_mb(process.pid)
    finally:
        process.terminate()
        code = process.wait(30)
    lines = log.read_text().splitlines()
    errors = [index for index, line in enumerate(lines) if "Traceback" in line]
    if errors:
        print("\n".join(lines[max(0, errors[0] - 3) : errors[0] + 40]))
    return {
        "ready_s": round(ready_s, 2),
        "first_round_s": round(first_round_s, 2),
        "rss_mb_after_first_round": round(rss_first, 1),
        "rounds": rounds,
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "exit_code": code,
        "tracebacks": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="SQLite only, one poll round")
    parser.add_argument("--sources", type=int, default=SOURCES)
    parser.add_argument("--subscriptions", type=int, default=SUBSCRIPTIONS)
    args = parser.parse_args()
    pages = [varied_page(i) for i in range(args.sources)]
    figures: dict[str, Any] = {"sources": args.sources, "subscriptions": args.subscriptions}
    passed = True
    with Farm(farm_layout(pages, 4)) as farm, databases() as urls:
        chosen = {"sqlite": urls["sqlite"]} if args.quick else urls
        for name, url in chosen.items():
            with tempfile.TemporaryDirectory(prefix="outagebot-footprint-") as tmp:
                rounds = 1 if args.quick else 2
                result = asyncio.run(
                    measure(url, farm, Path(tmp), args.sources, args.subscriptions, rounds)
                )
            print(f"{name}:")
            for key, value in result.items():
                print(f"  {key:<28}{value}")
                figures[f"{name}_{key}"] = value
            passed &= result["peak_rss_mb"] <= TARGET_MB and result["tracebacks"] == 0
    write_result(NAME, figures, {"peak_rss_mb_max": TARGET_MB}, passed)
    summary = ", ".join(
        f"{db} peak {figures[f'{db}_peak_rss_mb']} MB, ready in {figures[f'{db}_ready_s']} s"
        for db in ("sqlite", "postgres")
        if f"{db}_peak_rss_mb" in figures
    )
    print(
        f"footprint ({args.sources} sources, {args.subscriptions} subscriptions): {summary} "
        f"(target: <= {TARGET_MB} MB): {'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
