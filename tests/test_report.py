"""/report and /adminrole through the neutral dispatch, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.core.commands import CommandRegistry
from bot.services.deps import AppDeps
from bot.store import catalog_store
from bot.store.crowd_models import ReportRow
from bot.store.crowd_store import StoredReport
from bot.store.engine import session_factory
from bot.store.report_ledger import ReportLedger
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import catalog_for

URL = "https://status.openai.com/api/v2/summary.json"


@pytest.fixture
async def deps(engine: AsyncEngine) -> AppDeps:
    catalog = catalog_for({"openai": URL})
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
    return AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))


async def say(
    deps: AppDeps,
    clock: FakeClock,
    command: str,
    *,
    user: str = "u1",
    community: str = "g1",
    admin: bool = False,
    roles: tuple[str, ...] = (),
    **options: str,
) -> str:
    reply = await TestAdapter.of(deps, clock, platform="discord", channel="c1").invoke(
        command, options, user=user, community=community, admin=admin, roles=roles
    )
    return headline_text(reply, clock.now)


async def test_report_counts_once_per_user_and_tells_what_others_see(
    deps: AppDeps, clock: FakeClock
) -> None:
    first = await say(deps, clock, "report", service="openai", what="errors")
    assert "Thanks, report received" in first
    assert "You are the first to report problems with Openai" in first
    assert "Official status: unknown" in first
    again = await say(deps, clock, "report", service="openai")
    assert "Already counted" in again
    await say(deps, clock, "report", user="u2", service="openai")
    third = await say(deps, clock, "report", user="u3", community="g2", service="openai")
    assert "You and 2 others reported problems with Openai in the last 30 min" in third
    clock.advance(minutes=31)
    assert "Thanks, report received" in await say(
        deps, clock, "report", service="openai"
    )  # new window


async def test_a_repeat_counts_again_only_once_the_30_minute_window_has_passed(
    deps: AppDeps, clock: FakeClock
) -> None:
    first_at = clock.now
    assert "Thanks, report received" in await say(deps, clock, "report", service="openai")
    for repeat_after in (timedelta(minutes=20), timedelta(minutes=29, seconds=59)):
        clock.now = first_at + repeat_after
        again = await say(deps, clock, "report", service="openai")
        assert "Already counted" in again, repeat_after
    # Just past the window the first report no longer covers the user: this one counts.
    clock.now = first_at + timedelta(minutes=30, seconds=1)
    assert "Thanks, report received" in await say(deps, clock, "report", service="openai")
    async with deps.sessions() as session:
        counted = (await session.exec(select(ReportRow.counted).order_by(col(ReportRow.at)))).all()
    assert counted == [True, False, False, True]


async def test_user_ids_are_stored_as_salted_hashes(deps: AppDeps, clock: FakeClock) -> None:
    await say(
        deps,
        clock,
        "report",
        user="123456789012345678",
        service="openai",
        details="@everyone <b>hi</b>",
    )
    async with deps.sessions() as session:
        (row,) = (await session.exec(select(ReportRow))).all()
    assert "123456789012345678" not in row.reporter_hash
    assert len(row.reporter_hash) == 64
    assert row.details == "@everyone <b>hi</b>"  # stored as written, never echoed unescaped


async def test_flooding_is_refused_and_counts_once(deps: AppDeps, clock: FakeClock) -> None:
    answers = [await say(deps, clock, "report", service="openai") for _ in range(25)]
    assert sum("Thanks, report received" in a for a in answers) == 1
    assert "reported a lot in the last hour" in answers[-1]
    async with deps.sessions() as session:
        counted = (await session.exec(select(ReportRow).where(ReportRow.counted))).all()
    assert len(counted) == 1


async def test_surge_is_compared_with_the_usual(deps: AppDeps, clock: FakeClock) -> None:
    start = clock.now
    for day in range(7):  # a quiet week: two reports a day
        for hour in (9, 15):
            clock.now = start - timedelta(days=day + 1) + timedelta(hours=hour - 12)
            await say(deps, clock, "report", user=f"old-{day}-{hour}", service="openai")
    clock.now = start
    for user in range(20):
        text = await say(
            deps, clock, "report", user=f"now-{user}", community=f"g{user % 4}", service="openai"
        )
    assert "You and 19 others" in text
    assert "× the usual)" in text


async def test_unknown_service_and_bad_choice(deps: AppDeps, clock: FakeClock) -> None:
    assert "I don't track" in await say(deps, clock, "report", service="nope")
    assert "what must be one of" in await say(
        deps, clock, "report", service="openai", what="exploded"
    )


async def test_admin_roles(deps: AppDeps, clock: FakeClock) -> None:
    member = {"roles": ("555555",)}
    assert "Only server admins" in await say(deps, clock, "subscribe", service="openai", **member)
    assert "can now use admin commands" in await say(
        deps, clock, "adminrole", admin=True, action="add", role="<@&555555>"
    )
    assert "Subscribed" in await say(deps, clock, "subscribe", service="openai", **member)
    # A role admin cannot hand out admin rights, and the role means nothing in another community.
    assert "Only server admins (Manage Server)" in await say(
        deps, clock, "adminrole", action="add", role="666666", **member
    )
    assert "Only server admins" in await say(
        deps, clock, "subscribe", community="g2", service="openai", **member
    )
    assert "<@&555555>" in await say(deps, clock, "adminrole", admin=True, action="list")
    await say(deps, clock, "adminrole", admin=True, action="remove", role="555555")
    assert "Only server admins" in await say(deps, clock, "subscribe", service="openai", **member)
    assert "Pick the role" in await say(
        deps, clock, "adminrole", admin=True, action="add", role="@everyone"
    )


def second_process(deps: AppDeps) -> AppDeps:
    """Another process on the same database: same catalog and sessions, its own memory."""
    return AppDeps(catalog=deps.catalog, sessions=deps.sessions, registry=deps.registry)


async def counted_rows(deps: AppDeps) -> int:
    async with deps.sessions() as session:
        return len((await session.exec(select(ReportRow).where(ReportRow.counted))).all())


async def test_racing_reports_from_one_user_count_once_across_processes(
    deps: AppDeps, clock: FakeClock
) -> None:
    other = second_process(deps)
    await say(deps, clock, "report", user="warmup", service="openai")  # salt and ledgers ready
    await say(other, clock, "report", user="warmup", service="openai")
    answers = await asyncio.gather(
        *(say(d, clock, "report", user="racer", service="openai") for d in [deps, other] * 6)
    )
    assert sum("Thanks, report received" in a for a in answers) == 1
    assert sum("Already counted" in a for a in answers) == 11
    assert await counted_rows(deps) == 2  # warmup and racer, once each


async def test_a_restarted_process_remembers_the_window_and_the_flood_limits(
    deps: AppDeps, clock: FakeClock
) -> None:
    for user in range(3):
        await say(deps, clock, "report", user=f"u{user}", community=f"g{user}", service="openai")
    for _ in range(19):  # one short of the hourly limit
        await say(deps, clock, "report", user="noisy", service="openai")
    restarted = second_process(deps)
    clock.advance(minutes=5)
    again = await say(restarted, clock, "report", user="u1", service="openai")
    assert "Already counted" in again
    assert "You and 3 others reported problems" in again  # u0, u2 and noisy
    await say(restarted, clock, "report", user="noisy", service="openai")  # the 20th
    assert "reported a lot in the last hour" in await say(
        restarted, clock, "report", user="noisy", service="openai"
    )
    clock.advance(minutes=26)  # u0..u2 and noisy's first report leave the 30-minute window
    fresh = await say(restarted, clock, "report", user="new", service="openai")
    assert "You are the first to report" in fresh
    assert await counted_rows(deps) == 5


async def test_reports_from_another_process_show_up_after_the_ledger_primes_again(
    deps: AppDeps, clock: FakeClock
) -> None:
    other = second_process(deps)
    await say(deps, clock, "report", user="a", service="openai")
    await say(other, clock, "report", user="b", community="g2", service="openai")
    await say(other, clock, "report", user="c", community="g3", service="openai")
    behind = await say(deps, clock, "report", user="d", service="openai")
    assert "You and 1 other reported" in behind  # this process has not seen b and c yet
    clock.advance(minutes=10)  # PostgreSQL primes again every minute, SQLite every 10
    caught_up = await say(deps, clock, "report", user="e", service="openai")
    assert "You and 4 others reported" in caught_up


def test_the_ledger_counts_exactly_however_time_jumps(clock: FakeClock) -> None:
    rng = random.Random(5)
    ledger = ReportLedger(service_ids=list)
    stored: list[StoredReport] = []
    for report_id in range(400):  # arrival order is not time order (late commits, other clocks)
        at = clock.now + timedelta(seconds=rng.uniform(0, 7200))
        report = StoredReport(
            id=report_id,
            service_id=rng.choice(["a", "b"]),
            reporter_hash=f"u{rng.randrange(60)}",
            community=f"discord:g{rng.randrange(9)}",
            at=at,
            counted=rng.random() < 0.6,
        )
        ledger.record(report)
        stored.append(report)
    for step in [30, 95, 40, 119, 0, 61, 61, 200]:  # minutes after the start, back and forth
        now = clock.now + timedelta(minutes=step)
        since = now - timedelta(minutes=30)
        inside = [r for r in stored if r.service_id == "a" and r.counted and r.at >= since]
        spread = ledger.spread("a", "u7", now)
        assert spread.reporters == len({r.reporter_hash for r in inside})
        assert spread.communities == len({r.community for r in inside})
        assert spread.caller_included == any(r.reporter_hash == "u7" for r in inside)
        hour_ago = now - timedelta(hours=1)
        assert ledger.sent_by_user("u7", hour_ago) == sum(
            r.reporter_hash == "u7" and r.at >= hour_ago for r in stored
        )
        assert ledger.sent_by_community("discord:g3", hour_ago) == sum(
            r.community == "discord:g3" and r.at >= hour_ago for r in stored
        )
