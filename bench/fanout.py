"""One incident to 1,000 Discord channels through the real DiscordSender and OutboxWorker.

The fake Discord (bench/_fake_discord.py, a child process) enforces 50 requests/s globally and
5 requests per 5 s per route and channel with real 429s, and records every created message.
A migrated database gets 1,000 subscriptions and one INCIDENT_OPENED event staged by
alert_store.record_alert_events; OutboxWorker.run_forever (as the app runs it, woken once) then
drains it. Then the end-to-end latency: a fake status page flips to a major incident, the real
StatusPoller driven by bot.runtime.poll_schedule.PollSchedule reads it, the worker is woken by
on_events, and the latency is the flip to the first message created at the fake Discord.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from _common import (
    Farm,
    databases,
    farm_layout,
    page_files,
    polled_on_schedule,
    statuspage_catalog,
    write_result,
)
from _fake_discord import SNOWFLAKE, Created, FakeDiscordProcess, channel_ids, summarise
from detection_latency import calm_summary, incident_files, wait_until
from sqlalchemy import event, func
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.adapters.discord.sender import GLOBAL_RATE_PER_SECOND
from bot.app import USER_AGENT
from bot.core.events import DetectionEvent, EventKind
from bot.core.timeutil import system_clock
from bot.delivery.worker import WorkerConfig
from bot.sources.catalog import Catalog
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.store import alert_store, catalog_store, migrate, subscription_store
from bot.store.engine import create_engine, session_factory
from bot.store.models import AlertMessageRow, DeliveryRow
from bot.store.subscription_store import Scope

DISCORD_CEILING_PER_S = 50  # Discord's own global limit per bot: the figure is a share of this

NAME = "fanout"
SERVICE = "s0"  # statuspage_catalog names its services s0, s1, …


async def prepare(
    url: str, catalog: Catalog, ids: Sequence[str], services: int = 1
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession]]:
    """Migrate, load the catalog, subscribe the channels (10 to a guild) to services s0, s1, …:
    an equal share of them to each."""
    engine = create_engine(url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        for index, channel in enumerate(ids):
            await subscription_store.upsert_subscription(
                session=session,
                scope=Scope("discord", str(SNOWFLAKE + 1 + index // 10)),
                channel_id=channel,
                service_id=f"s{index * services // len(ids)}",
                components=(),
                min_severity="minor",
                mention_role=None,
                early_warnings=False,
                maintenance=True,
                now=system_clock(),
            )
        await session.commit()
    return engine, sessions


def opened(now: datetime) -> DetectionEvent:
    """A new major incident, as the poller reports one."""
    stamp, status = now.isoformat(), "investigating"
    detail = {"status": status, "impact": "major", "update_status": status, "update_at": stamp}
    detail |= {"update_body": "We are investigating elevated error rates.", "started_at": stamp}
    kind, title = EventKind.INCIDENT_OPENED, "Elevated error rates on the API"
    return DetectionEvent(kind, SERVICE, now, "opened", "bench-fanout", title, detail)


async def fanout(
    url: str, fake: FakeDiscordProcess, channels: int, config: WorkerConfig
) -> dict[str, Any]:
    """Stage one post per channel, drain the outbox as the app does, measure what happened."""
    catalog = statuspage_catalog(["https://status.example.invalid/api/v2/summary.json"])
    ids = channel_ids(channels)
    engine, sessions = await prepare(url, catalog, ids)
    statements = [0]

    def listener(*_args: object) -> None:
        statements[0] += 1

    try:
        started = time.perf_counter()
        async with sessions() as session:
            now = system_clock()
            staged = await alert_store.record_alert_events(
                session=session, events=[opened(now)], now=now
            )
            await session.commit()
        stage_s = time.perf_counter() - started
        fake.reset()
        event.listen(engine.sync_engine, "before_cursor_execute", listener)
        async with new_http_session(user_agent=USER_AGENT) as http:  # as the app's shared one
            worker = fake.worker(http, sessions, catalog, config)
            stop = asyncio.Event()
            cpu, t0 = time.process_time(), time.monotonic()
            task = asyncio.create_task(worker.run_forever(stop))  # default 2 s tick, as the app
            worker.wake()  # as the poller's on_events does after staging
            busy, deadline = 1, t0 + 8 * channels / GLOBAL_RATE_PER_SECOND + 60
            while busy and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                async with sessions() as session:
                    open_rows = col(DeliveryRow.status).in_(("pending", "sending"))
                    query = select(func.count()).select_from(DeliveryRow).where(open_rows)
                    busy = (await session.exec(query)).one()
            cpu = time.process_time() - cpu
            stop.set()
            await task
        event.remove(engine.sync_engine, "before_cursor_execute", listener)
        async with sessions() as session:
            rows = (await session.exec(select(DeliveryRow))).all()
            count = select(func.count()).select_from(AlertMessageRow)
            recorded = (await session.exec(count)).one()
    finally:
        await engine.dispose()
    statuses = collections.Counter(r.status for r in rows)
    seen = summarise(fake.stats(), ids, t0)
    return {
        "staged": staged,
        "stage_s": round(stage_s, 3),
        "rate_share": round(seen["request_rate_per_s"] / DISCORD_CEILING_PER_S, 4),
        **seen,
        "retries": sum(max(0, r.attempts - 1) for r in rows),
        "deliveries_done": statuses["done"],
        "deliveries_failed": statuses["failed"],
        "deliveries_unfinished": len(rows) - statuses["done"] - statuses["failed"],
        "messages_recorded": recorded,
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_delivery": round(1000 * cpu / max(1, len(rows)), 2),
        "sql_per_delivery": round(statements[0] / max(1, len(rows)), 1),
    }


async def latency(
    farm: Farm, fake: FakeDiscordProcess, interval: float, trials: int, rng: random.Random
) -> list[float | None]:
    """Flip -> first message created at the fake Discord, per trial (None: not seen). Trial i
    flips page i (service s<i>, 3 channels of its own) from calm to a new major incident."""
    created: list[Created] = []
    arrived = asyncio.Event()

    def on_created(message: Created) -> None:
        created.append(message)
        arrived.set()

    def first_post(incident: str) -> float | None:
        return min((c.at for c in created if incident in c.title), default=None)

    async def record(
        session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
    ) -> None:
        await alert_store.record_alert_events(session=session, events=events, now=now)

    latencies: list[float | None] = []
    fake.reset()
    fake.follow(on_created)
    catalog = statuspage_catalog([farm.summary_url(i) for i in range(trials)])
    with tempfile.TemporaryDirectory(prefix="outagebot-bench-") as tmp:
        url, ids = f"sqlite+aiosqlite:///{Path(tmp) / 'e2e.db'}", channel_ids(3 * trials, 10**5)
        engine, sessions = await prepare(url, catalog, ids, services=trials)
        try:
            async with new_http_session(user_agent=USER_AGENT) as http:
                worker = fake.worker(http, sessions, catalog)
                poller = StatusPoller(
                    catalog=catalog,
                    sessions=sessions,
                    fetcher=HttpFetcher(http),
                    prober=HttpProber(http),
                    clock=system_clock,
                    on_events=lambda _events: worker.wake(),  # as bot/app.py wires it
                    record_events=record,
                    interval_seconds=interval,
                )
                stop = asyncio.Event()
                task = asyncio.create_task(worker.run_forever(stop))
                try:
                    async with polled_on_schedule(poller, interval):
                        await asyncio.sleep(1.5 * interval + 5.5)  # every calm page read once
                        for trial in range(trials):
                            await asyncio.sleep(rng.uniform(0, interval))  # random phase
                            incident = f"bench{trial:03d}{rng.randrange(16**6):06x}"
                            flipped = farm.set_page(trial, incident_files(incident, resolved=False))
                            check = partial(lambda i: first_post(i) is not None, incident)
                            await wait_until(check, arrived, 3 * interval + 10)
                            first = first_post(incident)
                            latencies.append(None if first is None else first - flipped)
                            shown = "NOT SEEN" if first is None else f"{first - flipped:.3f} s"
                            print(f"trial {trial + 1:>3}: flip -> first Discord message {shown}")
                finally:
                    stop.set()
                    await task
        finally:
            fake.unfollow()
            await engine.dispose()
    return latencies


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="200 channels; 1 s interval, 5 trials")
    parser.add_argument("--channels", type=int, help="channels (default 1000; quick 200)")
    parser.add_argument("--concurrency", type=int, default=16, help="channel_concurrency")
    parser.add_argument("--batch", type=int, default=200, help="WorkerConfig.batch (default)")
    parser.add_argument("--interval", type=float, help="poll interval, s (default 2; quick 1)")
    parser.add_argument("--trials", type=int, help="latency trials (default 20; quick 5)")
    parser.add_argument("--seed", type=int, default=20261127, help="random seed")
    args = parser.parse_args()
    channels = args.channels or (200 if args.quick else 1000)
    interval = args.interval or (1.0 if args.quick else 2.0)
    trials = args.trials if args.trials is not None else 5 if args.quick else 20
    config = WorkerConfig(channel_concurrency=args.concurrency, batch=args.batch)
    logging.getLogger("bot").setLevel(logging.ERROR)  # 429 warnings: the fake counts them

    figures: dict[str, Any] = {
        "channels": channels,
        "discord_limit_per_s": DISCORD_CEILING_PER_S,
        "sender_limit_per_s": GLOBAL_RATE_PER_SECOND,
    }
    figures |= {"channel_concurrency": config.channel_concurrency, "batch": config.batch}
    passed, dbs = True, []
    pages = [page_files(calm_summary())] * max(1, trials)  # one page (service) per trial
    with FakeDiscordProcess() as fake, Farm(farm_layout(pages, servers=1)) as farm:
        with databases() as urls:
            for db, url in urls.items():
                result = asyncio.run(fanout(url, fake, channels, config))
                print(f"\n{db}: one incident to {channels} channels")
                for key, value in result.items():
                    print(f"  {key:<24}{value}")
                figures |= {f"{db}_{k}": v for k, v in result.items() if k != "per_second"}
                passed &= result["rate_share"] >= 0.9 and not result["lost"] + result["duplicates"]
                dbs.append(db)
        print(
            f"\nflip -> first post: poll interval {interval:g} s, {trials} trials, 3 channels each"
        )
        latencies = asyncio.run(latency(farm, fake, interval, trials, random.Random(args.seed)))
    seen = sorted(x for x in latencies if x is not None)
    p50 = statistics.median(seen) if seen else float("nan")
    quantiles = statistics.quantiles(seen, n=20, method="inclusive") if len(seen) > 1 else []
    p95 = quantiles[18] if quantiles else float("nan")
    target = interval + 1.0
    figures |= {"poll_interval_s": interval, "trials": trials}
    figures |= {"latency_missed": len(latencies) - len(seen), "latency_p50_s": round(p50, 3)}
    figures |= {"latency_p95_s": round(p95, 3), "latency_max_s": round(max(seen or [p50]), 3)}
    passed &= figures["latency_missed"] == 0 and p95 <= target
    targets = {"rate_share_min": 0.9, "lost_max": 0, "duplicates_max": 0}
    write_result(NAME, figures, targets | {"latency_p95_max_s": target}, passed)
    print(f"\n{'figure':<24}" + "".join(f"{db:>12}" for db in dbs))
    for key in ("rate_share", "wall_s", "lost", "duplicates", "global_429", "route_429", "retries"):
        print(f"{key:<24}" + "".join(f"{figures[f'{db}_{key}']:>12}" for db in dbs))
    for key in ("latency_p50_s", "latency_p95_s", "latency_max_s", "latency_missed"):
        print(f"{key:<24}{figures[key]:>12}")
    share = ", ".join(f"{db} {figures[f'{db}_rate_share']:.1%}" for db in dbs)
    lost = sum(figures[f"{db}_lost"] for db in dbs)
    dups = sum(figures[f"{db}_duplicates"] for db in dbs)
    print(
        f"fanout to {channels} Discord channels: {share} of 50 req/s (target >= 90 %), lost "
        f"{lost}, duplicates {dups}; flip -> first post p95 {p95:.2f} s (target <= {target:g} s)"
        f": {'PASS' if passed else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
