"""20,000 /reports within 60 s from 5,000 users through the neutral dispatch, per database.

Every report goes through the real registry, cog and store (salted user hash, window check,
flood limits, spread, the usual rate), on SQLite and, when TEST_DATABASE_URL is set, PostgreSQL.
Figures: reports dispatched, stored (lost = dispatched - stored), counted, p50/p95/p99 latency,
achieved ingest rate. Targets: zero lost, p99 <= 200 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func
from sqlmodel import select

from bench._common import databases, write_result
from bot.core.commands import Actor, CommandOutcome, CommandRegistry, Invocation, dispatch
from bot.core.timeutil import system_clock
from bot.services.deps import AppDeps
from bot.sources.catalog import parse_catalog
from bot.store import catalog_store, migrate
from bot.store.crowd_models import ReportRow
from bot.store.engine import create_engine, session_factory
from cogs import load_cogs

SERVICES = ("openai-api", "anthropic-api", "gemini", "mistral")
WHAT = ("errors", "slow", "login", "connect", "output", "other")


async def burst(
    url: str, *, reports: int, users: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    engine = create_engine(url)
    await migrate.upgrade(engine)
    catalog = parse_catalog(
        {
            "service": [
                {"id": s, "name": s, "source": [{"kind": "feed", "url": f"https://{s}/f"}]}
                for s in SERVICES
            ]
        }
    )
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
    rng = random.Random(7)
    plan = [
        (
            rng.randrange(users),
            rng.choice(SERVICES[:2]) if rng.random() < 0.9 else rng.choice(SERVICES),
            rng.choice(WHAT),
        )
        for _ in range(reports)
    ]
    latencies: list[float] = []
    outcomes: Counter[CommandOutcome] = Counter()
    deps.registry.on_answered = lambda _name, outcome, _seconds: outcomes.update([outcome])
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def one(index: int, user: int, service: str, what: str) -> None:
        due = start + seconds * index / reports  # spread evenly over the window
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        async with gate:
            began = time.perf_counter()
            invocation = Invocation(
                command="report",
                options={"service": service, "what": what},
                actor=Actor(platform="discord", user_id=f"user-{user}"),
                community_id=f"guild-{user % 40}",
                channel_id="c",
            )
            await dispatch(deps.registry, invocation, deps, system_clock())
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one(i, *p) for i, p in enumerate(plan)))
    wall = time.perf_counter() - start
    async with sessions() as session:
        stored = (await session.exec(select(func.count()).select_from(ReportRow))).one()
        counted = (
            await session.exec(select(func.count()).select_from(ReportRow).where(ReportRow.counted))
        ).one()
    await engine.dispose()
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)  # noqa: E731
    return {
        "dispatched": reports,
        "stored": int(stored),
        "refused_by_flood_limits": outcomes[CommandOutcome.REFUSED],
        "failed": outcomes[CommandOutcome.ERROR],  # an error answer: the report was not stored
        "lost": reports - outcomes[CommandOutcome.REFUSED] - int(stored),
        "counted": int(counted),
        "wall_s": round(wall, 2),
        "ingest_per_s": round(int(stored) / wall, 1),
        "p50_ms": pick(0.50),
        "p95_ms": pick(0.95),
        "p99_ms": pick(0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 reports from 500 users in 10 s")
    args = parser.parse_args()
    reports, users, seconds = (2_000, 500, 10.0) if args.quick else (20_000, 5_000, 60.0)
    figures: dict[str, Any] = {"reports": reports, "users": users, "window_s": seconds}
    passed = True
    with databases() as urls:
        for name, url in urls.items():
            result = asyncio.run(
                burst(url, reports=reports, users=users, seconds=seconds, concurrency=64)
            )
            print(f"{name}:")
            for key, value in result.items():
                print(f"  {key:26} {value}")
                figures[f"{name}_{key}"] = value
            passed &= result["lost"] == 0 and result["failed"] == 0 and result["p99_ms"] <= 200
    targets = {"lost_max": 0, "p99_ms_max": 200}
    write_result("report_burst", figures, targets, passed)
    dbs = [k.removesuffix("_p99_ms") for k in figures if k.endswith("_p99_ms")]
    summary = ", ".join(
        f"{db} p99 {figures[f'{db}_p99_ms']} ms, {figures[f'{db}_ingest_per_s']}/s, "
        f"lost {figures[f'{db}_lost']}"
        for db in dbs
    )
    print(
        f"report burst ({reports} reports, {users} users, {seconds:.0f} s): {summary} "
        f"(targets: lost 0, p99 <= 200 ms): {'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
