"""/privacy and /privacy forget through the neutral dispatch, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import CommandRegistry
from bot.core.rich import to_plain
from bot.sources.catalog import parse_catalog
from bot.store import privacy_store
from bot.store.community_models import WorkaroundReportRow, WorkaroundRow, WorkaroundVoteRow
from bot.store.crowd_models import ReportRow
from bot.store.engine import session_factory
from bot.store.slack_install_models import SlackInstallationRow
from bot.testing import TestAdapter, deps_for
from cogs import load_cogs
from tests.conftest import FakeClock

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "aliases": ["openai"],
                "source": [{"kind": "statuspage", "url": "https://s.example/a.json"}],
            },
            {
                "id": "anthropic-api",
                "name": "Anthropic API",
                "aliases": ["claude"],
                "source": [{"kind": "statuspage", "url": "https://s.example/b.json"}],
            },
        ]
    }
)


class Rig(TestAdapter):
    clock: FakeClock

    async def rows(self, table: type) -> list:  # type: ignore[type-arg]
        async with self.deps.sessions() as session:
            return list((await session.exec(select(table))).all())


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> Rig:
    deps = await deps_for(session_factory(engine), CATALOG, load_cogs(CommandRegistry()))
    return Rig.of(deps, clock, platform="discord", community="A", channel="ch")


async def seed(rig: Rig) -> int:
    """u1 (Discord) reports in two servers, shares and votes; u2 and Slack's u1 do the same."""
    for community in ("A", "B"):
        reply = await rig.run(
            f"report openai errors details:down in {community}", community=community
        )
        # A repeat inside 30 min is stored (uncounted): it is still the person's data.
        assert reply.title in {"Thanks, report received", "Already counted"}, rig.plain(reply)
        rig.clock.advance(minutes=1)
    await rig.run("report claude slow", community="B")
    await rig.run("report openai errors", user="u2")
    await rig.run("report openai errors", platform="slack", community="T1")
    shared = await rig.run("workaround add openai Use the batch API | Send jobs to /v1/batches")
    number = int(to_plain(shared.body, rig.clock.now).split("#", 1)[1].split()[0])
    other = await rig.run("workaround add openai Retry later | wait a minute", user="u2")
    other_number = int(to_plain(other.body, rig.clock.now).split("#", 1)[1].split()[0])
    await rig.run(f"workaround vote {other_number} worked", community="B")
    await rig.run(f"workaround vote {number} worked", user="u2")
    await rig.run(f"workaround vote {other_number} didnt", platform="slack", community="T1")
    await rig.run(f"workaround report {other_number}", community="B")
    return number


async def test_show_lists_what_is_kept_everywhere_privately(rig: Rig) -> None:
    await seed(rig)
    reply = await rig.run("privacy", community="C")  # a server where u1 never did anything
    text = rig.plain(reply)
    assert reply.ephemeral
    assert "I never store your Discord user id or name" in text
    assert "• 3 problem reports (/report)" in text
    assert "• 1 workaround vote\n" in text
    assert "• 1 workaround you shared" in text
    assert "• 1 workaround you reported" in text
    assert [b.action for b in reply.buttons] == ["privacy forget"]
    assert "u1" not in text


async def test_show_for_someone_unknown_says_nothing_is_kept(rig: Rig) -> None:
    reply = await rig.run("privacy", user="new")
    assert "Nothing at all." in rig.plain(reply)
    assert reply.ephemeral
    assert not reply.buttons
    forget = await rig.run("privacy forget", user="new")
    assert "nothing to forget" in rig.plain(forget)


async def test_forget_needs_confirmation_then_deletes_everywhere(rig: Rig) -> None:
    number = await seed(rig)
    before_reports = await rig.rows(ReportRow)
    ask = await rig.run("privacy forget")
    assert ask.ephemeral
    assert ask.title == "Forget you?"
    assert "3 problem reports and 1 workaround vote" in rig.plain(ask)
    assert "The 1 workaround you shared will stay for others" in rig.plain(ask)
    assert await rig.rows(ReportRow) == before_reports  # asking changes nothing

    # The button carries the confirming command line; the adapter dispatches it as the clicker.
    (button,) = ask.buttons
    done = await rig.run(button.action)
    text = rig.plain(done)
    assert done.ephemeral
    assert done.title == "Forgotten"
    assert "deleted 3 problem reports and 1 workaround vote" in text
    assert "The 1 workaround you shared no longer names you" in text

    reports = await rig.rows(ReportRow)
    # Only u2's and the Slack user's reports remain: "u1" on Slack is someone else.
    assert sorted((r.platform, r.community_id) for r in reports) == [
        ("discord", "A"),
        ("slack", "T1"),
    ]
    assert len(reports) == len(before_reports) - 3
    votes = await rig.rows(WorkaroundVoteRow)
    assert len(votes) == 2  # u2's vote and the Slack user's vote
    authored = {w.id: w for w in await rig.rows(WorkaroundRow)}
    assert authored[number].author_hash == privacy_store.ANONYMOUS
    assert authored[number].title == "Use the batch API"
    assert authored[number].steps == "Send jobs to /v1/batches"
    flags = await rig.rows(WorkaroundReportRow)
    assert [f.reporter_hash for f in flags] == [privacy_store.ANONYMOUS]  # B's flag still counts

    after = rig.plain(await rig.run("privacy"))
    assert "Nothing at all." in after
    listing = rig.plain(await rig.run("workaround list openai", user="u3", community="Z"))
    assert "Use the batch API" in listing
    refused = rig.plain(await rig.run(f"workaround remove {number}"))
    assert "Only the person who shared" in refused


async def test_forget_on_one_platform_leaves_the_other_identity(rig: Rig) -> None:
    await seed(rig)
    await rig.run("privacy forget confirm", platform="slack", community="T1")
    reports = await rig.rows(ReportRow)
    assert sorted((r.platform, r.community_id) for r in reports) == [
        ("discord", "A"),
        ("discord", "A"),
        ("discord", "B"),
        ("discord", "B"),
    ]
    shown = rig.plain(await rig.run("privacy"))
    assert "• 3 problem reports" in shown


async def test_typed_confirm_must_be_exact(rig: Rig) -> None:
    await seed(rig)
    reply = await rig.run("privacy forget yes")
    assert "confirm must be one of: confirm" in rig.plain(reply)
    assert len(await rig.rows(ReportRow)) == 5


async def test_forgotten_user_reports_are_counted_afresh(rig: Rig) -> None:
    await seed(rig)
    await rig.run("privacy forget confirm")
    again = await rig.run("report openai errors")
    assert again.title == "Thanks, report received"


async def test_the_anonymous_marker_cannot_be_forgotten(rig: Rig) -> None:
    async with rig.deps.sessions() as session:
        with pytest.raises(ValueError, match="anonymous"):
            await privacy_store.forget(session=session, person_hash=privacy_store.ANONYMOUS)


async def test_slack_install_records_stop_naming_the_installer(rig: Rig) -> None:
    async with rig.deps.sessions() as session:
        for workspace, installer in (("T1", "U1"), ("T2", "U1"), ("T3", "U2")):
            session.add(
                SlackInstallationRow(
                    workspace_id=workspace,
                    team_id=workspace,
                    bot_token=f"xoxb-{workspace}",
                    installer_user_id=installer,
                    installed_at=NOW,
                )
            )
        await session.commit()
    # The same id on Discord is someone else; the record is Slack's.
    assert "Nothing at all." in rig.plain(await rig.run("privacy", user="U1"))
    shown = rig.plain(await rig.run("privacy", user="U1", platform="slack", community="T1"))
    assert "the install record of 2 Slack workspaces (as installer)" in shown
    done = await rig.run("privacy forget confirm", user="U1", platform="slack", community="T1")
    assert "Slack install records no longer name you" in rig.plain(done)
    installs = {row.workspace_id: row for row in await rig.rows(SlackInstallationRow)}
    assert {w: r.installer_user_id for w, r in installs.items()} == {"T1": "", "T2": "", "T3": "U2"}
    assert installs["T1"].bot_token == "xoxb-T1"  # the workspace keeps its install


PEOPLE = ("p0", "p1", "p2", "p3")


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(PEOPLE), st.sampled_from(["report", "vote", "author", "flag"])),
        max_size=25,
    ),
    forgotten=st.sampled_from(PEOPLE),
)
async def test_forget_touches_exactly_one_persons_rows(
    engine: AsyncEngine, rows: list[tuple[str, str]], forgotten: str
) -> None:
    run = uuid.uuid4().hex[:8]  # examples share the database: each gets its own people
    who = {person: f"{run}-{person}" for person in PEOPLE}
    async with session_factory(engine)() as session:
        owner = WorkaroundRow(
            service_id="openai-api",
            title="t",
            steps="s",
            author_hash=f"{run}-owner",
            origin_platform="discord",
            origin_community_id="A",
            created_at=NOW,
        )
        session.add(owner)
        await session.flush()
        for index, (person, kind) in enumerate(rows):
            person_hash = who[person]
            if kind == "report":
                session.add(
                    ReportRow(
                        service_id="openai-api",
                        what="errors",
                        reporter_hash=person_hash,
                        platform="discord",
                        community_id=f"c{index % 3}",
                        at=NOW,
                    )
                )
            elif kind == "author":
                session.add(
                    WorkaroundRow(
                        service_id="openai-api",
                        title=f"w{index}",
                        steps="s",
                        author_hash=person_hash,
                        origin_platform="discord",
                        origin_community_id="A",
                        created_at=NOW,
                    )
                )
            else:
                target = WorkaroundRow(
                    service_id="openai-api",
                    title=f"x{index}",
                    steps="s",
                    author_hash=f"{run}-owner",
                    origin_platform="discord",
                    origin_community_id="A",
                    created_at=NOW,
                )
                session.add(target)
                await session.flush()
                assert target.id is not None
                if kind == "vote":
                    session.add(
                        WorkaroundVoteRow(
                            workaround_id=target.id, voter_hash=person_hash, worked=True, at=NOW
                        )
                    )
                else:
                    session.add(
                        WorkaroundReportRow(
                            workaround_id=target.id,
                            platform="discord",
                            community_id=f"c{index}",
                            reporter_hash=person_hash,
                            at=NOW,
                        )
                    )
        await session.commit()
        before = {
            p: await privacy_store.personal_data(session=session, person_hash=h)
            for p, h in who.items()
        }
        done = await privacy_store.forget(session=session, person_hash=who[forgotten])
        await session.commit()
        after = {
            p: await privacy_store.personal_data(session=session, person_hash=h)
            for p, h in who.items()
        }
    mine = before[forgotten]
    assert (done.reports_deleted, done.votes_deleted) == (mine.reports, mine.votes)
    assert (done.workarounds_anonymised, done.flags_anonymised) == (mine.workarounds, mine.flags)
    assert after[forgotten].empty
    for person in PEOPLE:
        if person != forgotten:
            assert after[person] == before[person]
