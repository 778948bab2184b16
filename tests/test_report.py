"""/report and /adminrole through the neutral dispatch, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import Actor, CommandRegistry, Invocation, dispatch
from bot.core.rich import to_plain
from bot.deps import AppDeps
from bot.store import repository
from bot.store.crowd_models import ReportRow
from bot.store.engine import session_factory
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import catalog_for

URL = "https://status.openai.com/api/v2/summary.json"


@pytest.fixture
async def deps(engine: AsyncEngine) -> AppDeps:
    catalog = catalog_for({"openai": URL})
    sessions = session_factory(engine)
    async with sessions() as session:
        await repository.sync_catalog(session=session, catalog=catalog)
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
    invocation = Invocation(
        command=command,
        options=options,
        community_id=community,
        channel_id="c1",
        actor=Actor(platform="discord", user_id=user, is_admin=admin, roles=roles),
    )
    reply = await dispatch(deps.registry, invocation, deps, clock.now)
    return "\n".join([reply.title or "", to_plain(reply.body, clock.now)])


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
