"""/workaround through the neutral dispatch: sharing, ranking, moderation, abuse."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.alert_render import AlertView, render_alert
from bot.core.commands import (
    CommandRegistry,
    UserFacingError,
)
from bot.core.rich import Link, Quoted, to_plain
from bot.sources.catalog import parse_catalog
from bot.store.community_models import WorkaroundRow, WorkaroundVoteRow
from bot.store.engine import session_factory
from bot.testing import TestAdapter, deps_for
from cogs import load_cogs
from cogs.workaround import check_link
from tests.conftest import FakeClock

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "aliases": ["openai"],
                "capabilities": ["chat"],
                "source": [{"kind": "statuspage", "url": "https://s.example/a.json"}],
            },
            {
                "id": "anthropic-api",
                "name": "Anthropic API",
                "aliases": ["claude"],
                "capabilities": ["chat"],
                "source": [{"kind": "statuspage", "url": "https://s.example/b.json"}],
            },
        ]
    }
)
INJECTION = "@everyone <script>alert(1)</script> **bold** [x](javascript:alert(1)) <@&42>"


class Rig(TestAdapter):
    clock: FakeClock

    async def add(self, text: str, **kwargs: object) -> int:
        reply = await self.run(f"workaround add openai {text}", **kwargs)  # type: ignore[arg-type]
        plain = to_plain(reply.body, self.clock.now)
        assert "Workaround #" in plain, plain
        return int(plain.split("#", 1)[1].split()[0])


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> Rig:
    deps = await deps_for(session_factory(engine), CATALOG, load_cogs(CommandRegistry()))
    return Rig.of(deps, clock, platform="discord", community="A", channel="ch")


async def test_shared_across_communities_and_platforms(rig: Rig) -> None:
    number = await rig.add("Use the batch API | Send jobs to /v1/batches | https://example.com/g")
    listing = await rig.run("workaround list openai", platform="slack", community="T1")
    assert listing.title == "Workarounds for OpenAI API"
    assert listing.fields[0].name.startswith(f"#{number}")
    assert Quoted("Use the batch API") in listing.fields[0].value
    assert Link("More on example.com", "https://example.com/g") in listing.fields[0].value
    # Origin stays private until the origin community allows it.
    assert "from Discord" not in to_plain(listing.fields[0].value, rig.clock.now)
    assert [b.action for b in listing.buttons] == [
        f"workaround vote {number} worked",
        f"workaround vote {number} didnt",
        "workaround form openai-api",  # "Add workaround": the form, on platforms that have one
    ]
    denied = await rig.text("workaround origin on Our Server", admin=False)
    assert "Only admins" in denied
    await rig.run("workaround origin on Our Server", admin=True)
    listing = await rig.run("workaround list openai", platform="slack", community="T1")
    assert "from Discord, Our Server" in to_plain(listing.fields[0].value, rig.clock.now)
    assert Quoted("Our Server") in listing.fields[0].value
    assert "No one has shared" in await rig.text("workaround list claude")


async def test_ranking_prefers_confirmed_recent_successes(rig: Rig) -> None:
    old = await rig.add("Old trick | worked last month")
    fresh = await rig.add("Fresh trick | works now", user="u2")
    doubtful = await rig.add("Doubtful | one vote", user="u3")
    for voter in range(6):
        await rig.run(f"workaround vote {old} worked", user=f"v{voter}")
    rig.clock.advance(days=10)
    for voter in range(6):
        await rig.run(f"workaround vote {fresh} worked", user=f"w{voter}")
    await rig.run(f"workaround vote {fresh} didn't", user="w9")
    await rig.run(f"workaround vote {doubtful} worked", user="x1")
    listing = await rig.run("workaround list openai")
    order = [int(f.name.split()[0].lstrip("#")) for f in listing.fields]
    assert order == [fresh, old, doubtful]
    assert listing.fields[0].name == f"#{fresh} · ✅ 6 worked · ❌ 1 didn't"


async def test_flooded_votes_from_one_user_count_once(rig: Rig) -> None:
    number = await rig.add("Retry later | wait a minute")
    for _ in range(25):
        await rig.run(f"workaround vote {number} worked", user="flooder")
    reply = await rig.text(f"workaround vote {number} worked", user="flooder")
    assert "each person counts once" in reply
    assert "✅ 1 · ❌ 0" in reply
    changed = await rig.text(f"workaround vote {number} didn't", user="flooder")
    assert "✅ 0 · ❌ 1" in changed
    # The same person on another platform is another identity there; ids are never stored.
    async with rig.deps.sessions() as session:
        votes = (await session.exec(select(WorkaroundVoteRow))).all()
    assert len(votes) == 1
    assert "flooder" not in votes[0].voter_hash
    assert len(votes[0].voter_hash) == 64
    assert "Vote with" in await rig.text(f"workaround vote {number} maybe")


async def test_add_rate_limit(rig: Rig) -> None:
    for index in range(5):
        await rig.add(f"Trick {index} | step {index}")
    refused = await rig.text("workaround add openai One more | please")
    assert "the limit" in refused
    rig.clock.advance(hours=1, seconds=1)
    await rig.add("After an hour | fine again")


async def test_injection_is_stored_as_written_and_rendered_quoted(rig: Rig) -> None:
    number = await rig.add(INJECTION)
    async with rig.deps.sessions() as session:
        row = await session.get(WorkaroundRow, number)
    assert row is not None
    assert row.steps == INJECTION
    listing = await rig.run("workaround list openai")
    spans = listing.fields[0].value
    assert Quoted(INJECTION) in spans or any(
        isinstance(s, Quoted) and s.text.startswith("@everyone") for s in spans
    )
    # Every piece of user text is Quoted: none of it reaches the reply as our own words.
    ours = "".join(getattr(s, "text", "") for s in spans if not isinstance(s, Quoted | Link))
    assert "@everyone" not in ours
    assert "javascript" not in ours
    assert "<script>" not in ours
    from bot.adapters.discord.render import render_reply

    rendered = render_reply(listing, rig.clock.now).embed.to_dict()
    field = rendered["fields"][0]["value"]
    assert "@everyone" not in field.replace("@\u200beveryone", "")
    assert "**bold**" not in field


async def test_links_must_be_http_and_text_has_caps(rig: Rig) -> None:
    for bad in ("javascript:alert(1)", "ftp://example.com/x", "data:text/html,hi", "example.com"):
        reply = await rig.text(f"workaround add openai Title | steps | {bad}")
        assert "https://" in reply
        assert "Workaround #" not in reply
    assert "characters I can't show" in await rig.text(
        "workaround add openai T | s | https://example.com/a)b"
    )
    long_text = "x" * 501
    assert "too long (at most 500 characters)" in await rig.text(
        f"workaround add openai {long_text}"
    )
    assert "title is too long" in await rig.text(f"workaround add openai {'t' * 120} | steps")
    assert "at most three parts" in await rig.text("workaround add openai a | b | c | d")


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("https://status.openai.com@evil.example/", "evil.example"),
        ("https://user:pass@evil.example/x", "evil.example"),
        ("https://status.openai.com:443@evil.example/", "evil.example"),
        ("HTTPS://@evil.example", "evil.example"),
        ("https://status.openai.com%40evil.example/", "plain host name"),
        ("https://status.openai.com%2eevil.example/", "plain host name"),
        ("https://status.openai.com\\@evil.example/", "can't show safely"),
        ("https://evil.example\\status.openai.com/", "can't show safely"),
        ("https://status.openai.com\u3002evil.example/", "can't show safely"),
        ("https://status\uff0eopenai.com/", "can't show safely"),
        ("https://status.openai.com:x@evil.example:99999/", "user name"),
        ("https://status.openai.com:99999/", "plain host name"),
    ],
)
def test_links_with_a_user_name_or_a_disguised_host_are_refused(link: str, says: str) -> None:
    with pytest.raises(UserFacingError) as refusal:
        check_link(link)
    assert says in str(refusal.value)


async def test_a_link_with_a_user_name_is_refused_naming_the_real_host(rig: Rig) -> None:
    reply = await rig.text("workaround add openai T | s | https://status.openai.com@evil.example/")
    assert "user name or password" in reply
    assert "“evil.example”" in reply
    assert "Workaround #" not in reply


@pytest.mark.parametrize(
    ("link", "host"),
    [
        ("https://status.openai.com/", "status.openai.com"),
        ("https://evil.example/#@status.openai.com", "evil.example"),
        ("https://status.openai.com.evil.example/a?b=@c", "status.openai.com.evil.example"),
        ("http://192.0.2.7:8080/x", "192.0.2.7"),
    ],
)
async def test_a_shared_link_shows_the_host_it_really_opens(rig: Rig, link: str, host: str) -> None:
    await rig.add(f"Title | steps | {link}")
    listing = await rig.run("workaround list openai")
    assert Link(f"More on {host}", link) in listing.fields[0].value


@given(
    user=st.text(alphabet=string.ascii_letters + string.digits + "._~-:%!$&*+,;=", max_size=20),
    host=st.from_regex(r"[a-z][a-z0-9-]{0,20}\.[a-z]{2,6}", fullmatch=True),
)
def test_no_link_with_userinfo_is_ever_accepted(user: str, host: str) -> None:
    with pytest.raises(UserFacingError):
        check_link(f"https://{user}@{host}/path")


async def test_an_old_stored_link_with_a_user_name_is_not_shown(rig: Rig) -> None:
    number = await rig.add("Title | steps | https://status.openai.com/")
    async with rig.deps.sessions() as session:
        row = await session.get(WorkaroundRow, number)
        assert row is not None
        row.link = "https://status.openai.com@evil.example/"
        session.add(row)
        await session.commit()
    listing = await rig.run("workaround list openai")
    shown = to_plain(listing.fields[0].value, rig.clock.now)
    assert "evil.example" not in shown
    assert not [span for span in listing.fields[0].value if isinstance(span, Link)]


async def test_local_hide_global_hide_and_remove_rules(rig: Rig) -> None:
    number = await rig.add("Tip | do this", community="A", user="author")
    # A non-admin cannot hide; an admin hides for community A only.
    assert "Only admins" in await rig.text(f"workaround hide {number}", community="A")
    await rig.run(f"workaround hide {number}", community="A", admin=True)
    assert "No one has shared" in await rig.text("workaround list openai", community="A")
    assert f"#{number}" in await rig.text("workaround list openai", community="B")
    await rig.run(f"workaround unhide {number}", community="A", admin=True)
    assert f"#{number}" in await rig.text("workaround list openai", community="A")

    # Reports: a community counts once; three communities hide it everywhere.
    await rig.run(f"workaround report {number}", community="B", user="r1")
    again = await rig.text(f"workaround report {number}", community="B", user="r2")
    assert "already reported" in again
    await rig.run(f"workaround report {number}", community="C", platform="slack")
    assert f"#{number}" in await rig.text("workaround list openai", community="D")
    final = await rig.text(f"workaround report {number}", community="E")
    assert "hidden everywhere" in final
    for community in ("A", "B", "D", "Z"):
        assert "No one has shared" in await rig.text("workaround list openai", community=community)

    # Remove: not a stranger, not an admin of another community; the author can.
    other = await rig.add("Second | tip", community="A", user="author")
    refused = await rig.text(f"workaround remove {other}", user="stranger", community="A")
    assert "Only the person who shared" in refused
    refused = await rig.text(f"workaround remove {other}", community="B", admin=True)
    assert "Only the person who shared" in refused
    assert "removed for everyone" in await rig.text(
        f"workaround remove {other}", user="author", community="A"
    )
    assert "no workaround" in (await rig.text(f"workaround vote {other} worked")).lower()
    third = await rig.add("Third | tip", community="A", user="author")
    assert "removed" in await rig.text(f"workaround remove {third}", community="A", admin=True)


async def test_workaround_links_to_open_incident_and_alerts_have_the_button(rig: Rig) -> None:
    from bot.store.models import AlertRow

    async with rig.deps.sessions() as session:
        session.add(
            AlertRow(
                service_id="openai-api",
                subject_id="inc-9",
                title="Elevated errors",
                status="investigating",
                impact="major",
                started_at=rig.clock.now,
                updated_at=rig.clock.now,
            )
        )
        await session.commit()
    reply = await rig.text("workaround add openai Use a fallback | switch models")
    assert "Linked to the ongoing incident" in reply
    listing = await rig.text("workaround list openai")
    assert "during “Elevated errors”" in listing
    view = AlertView(
        service_id="openai-api",
        service_name="OpenAI API",
        kind="incident",
        title="Elevated errors",
        status="investigating",
        impact="major",
        url=None,
        components=(),
        latest_update="",
        latest_update_at=None,
        started_at=rig.clock.now,
        resolved_at=None,
    )
    actions = [b.action for b in render_alert(view).buttons]
    assert "workaround list openai-api" in actions


async def test_usage_errors_are_friendly(rig: Rig) -> None:
    assert "Name the service" in await rig.text("workaround list")
    assert "workaround's number" in await rig.text("workaround vote soon worked")
    assert "I don't track" in await rig.text("workaround list nosuch")
    assert "Say what to do" in await rig.text("workaround add openai")
