"""One community can never read or change another's settings, through any command.

Communities are (platform, community id); the same id string on another platform is another
community. Adapters decide community, channel and admin rights from the platform event; options
are the only thing a user controls, so forged ids are tried there too.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import (
    CommandRegistry,
    Reply,
    UserFacingError,
)
from bot.core.rich import to_plain
from bot.core.textcommand import parse_command_line
from bot.sources.catalog import parse_catalog
from bot.store.community_models import FaqEntryRow, WorkaroundHideRow
from bot.store.crowd_models import CommunityAdminRoleRow
from bot.store.engine import session_factory
from bot.store.models import SubscriptionRow
from bot.testing import TestAdapter, deps_for
from cogs import load_cogs
from tests.conftest import FakeClock

CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": "openai-api",
                "name": "OpenAI API",
                "aliases": ["openai"],
                "source": [{"kind": "statuspage", "url": "https://s.example/a.json"}],
            },
        ]
    }
)
ROLE = "111111111111"


class Rig(TestAdapter):
    clock: FakeClock

    # Each community answers from its own channel ("ch-A"), so a leak names the other's channel.
    async def reply(
        self,
        command: str,
        options: dict[str, str] | None = None,
        *,
        community: str,
        channel: str | None = None,
        **who: Any,
    ) -> Reply:
        return await self.invoke(
            command, options, community=community, channel=channel or f"ch-{community}", **who
        )

    async def say(
        self, line: str, *, community: str, channel: str | None = None, **who: Any
    ) -> str:
        reply = await self.run(
            line, community=community, channel=channel or f"ch-{community}", **who
        )
        return self.plain(reply)

    async def count(self, table: type) -> int:
        async with self.deps.sessions() as session:
            return len((await session.exec(select(table))).all())


@pytest.fixture
async def rig(engine: AsyncEngine, clock: FakeClock) -> Rig:
    deps = await deps_for(session_factory(engine), CATALOG, load_cogs(CommandRegistry()))
    return Rig.of(deps, clock, platform="discord")


async def test_subscriptions_are_invisible_and_untouchable_elsewhere(rig: Rig) -> None:
    assert "Subscribed" in await rig.say("subscribe openai", community="A", admin=True)
    assert "ch-A" in await rig.say("subscriptions", community="A", admin=True)

    for other in ({"community": "B"}, {"community": "A", "platform": "slack"}):
        listing = await rig.say("subscriptions", admin=True, **other)  # type: ignore[arg-type]
        assert "No channel here follows any service yet" in listing
        # Even naming A's channel (an adapter bug could let that through) removes nothing of A's.
        gone = await rig.say(
            "unsubscribe openai",
            admin=True,
            channel="ch-A",
            **other,  # type: ignore[arg-type]
        )
        assert "was not following" in gone
    assert await rig.count(SubscriptionRow) == 1
    assert "ch-A" in await rig.say("subscriptions", community="A", admin=True)


@pytest.mark.parametrize(
    ("command", "forged"),
    [
        ("subscriptions", {"community": "A"}),
        ("subscriptions", {"community_id": "A"}),
        ("unsubscribe", {"service": "openai", "channel": "ch-A"}),
        ("subscribe", {"service": "openai", "guild": "A"}),
        ("faq", {"topic": "vpn", "community": "A"}),
        ("faq-edit", {"action": "remove", "topic": "vpn", "community": "A"}),
        ("adminrole", {"action": "list", "community": "A"}),
        ("workaround", {"action": "hide", "target": "1", "community": "A"}),
    ],
)
async def test_options_naming_another_community_are_refused(
    rig: Rig, command: str, forged: dict[str, str]
) -> None:
    await rig.say("subscribe openai", community="A", admin=True)
    await rig.say("faq-edit set vpn Use the office VPN.", community="A", admin=True)
    reply = await rig.reply(command, forged, community="B", admin=True)
    text = to_plain(reply.body, rig.clock.now)
    assert f"/{command} has no option" in text
    assert reply.ephemeral
    assert await rig.count(SubscriptionRow) == 1
    assert await rig.count(FaqEntryRow) == 1


async def test_typed_forged_ids_are_not_understood(rig: Rig) -> None:
    await rig.say("subscribe openai", community="A", admin=True)
    with pytest.raises(UserFacingError) as refused:
        parse_command_line(rig.deps.registry, "subscriptions community:A")
    assert "I didn't understand" in to_plain(refused.value.text, rig.clock.now)
    assert "ch-A" not in await rig.say("subscriptions", community="B", admin=True)


async def test_faq_entries_belong_to_one_community(rig: Rig) -> None:
    await rig.say("faq-edit set vpn Use the office VPN.", community="A", admin=True)
    await rig.say("faq-edit set attack Our own words on attacks.", community="B", admin=True)

    assert "Use the office VPN." in await rig.say("faq vpn", community="A")
    for other in ({"community": "B"}, {"community": "A", "platform": "slack"}):
        assert "There is no FAQ topic" in await rig.say("faq vpn", **other)  # type: ignore[arg-type]
        assert "vpn" not in await rig.say("faq", **other)  # type: ignore[arg-type]
        removed = await rig.say("faq-edit remove vpn", admin=True, **other)  # type: ignore[arg-type]
        assert "has no “vpn” entry" in removed
    assert "Use the office VPN." in await rig.say("faq vpn", community="A")
    assert "Our own words" not in await rig.say("faq attack openai", community="A")
    assert "Only server admins" in await rig.say("faq-edit set vpn hijack", community="A")
    assert "Use the office VPN." in await rig.say("faq vpn", community="A")


async def test_a_local_hide_binds_only_that_community(rig: Rig) -> None:
    shared = await rig.say("workaround add openai Use the batch API", community="B", user="w")
    number = shared.split("#", 1)[1].split()[0]
    assert "is hidden in this community" in await rig.say(
        f"workaround hide {number}", community="A", admin=True
    )

    assert "Use the batch API" not in await rig.say("workaround list openai", community="A")
    for action in (f"vote {number} worked", f"report {number}"):
        assert f"There is no workaround #{number} here" in await rig.say(
            f"workaround {action}", community="A"
        )
    # B and the same id on Slack still see it; their admins cannot unhide it for A.
    for other in ({"community": "B"}, {"community": "A", "platform": "slack"}):
        assert "Use the batch API" in await rig.say("workaround list openai", **other)  # type: ignore[arg-type]
        unhide = await rig.say(f"workaround unhide {number}", admin=True, **other)  # type: ignore[arg-type]
        assert "was not hidden here" in unhide
    assert await rig.count(WorkaroundHideRow) == 1
    assert "Use the batch API" not in await rig.say("workaround list openai", community="A")


async def test_admins_elsewhere_cannot_remove_or_recredit_a_workaround(rig: Rig) -> None:
    shared = await rig.say("workaround add openai Restart the client", community="A", user="w")
    number = shared.split("#", 1)[1].split()[0]
    refused = await rig.say(f"workaround remove {number}", community="B", admin=True)
    assert "Only the person who shared" in refused
    await rig.say("workaround origin on Evil Corp", community="B", admin=True)
    listing = await rig.say("workaround list openai", community="C")
    assert "Restart the client" in listing
    assert "Evil Corp" not in listing
    assert "from Discord" not in listing  # A never allowed showing its origin


async def test_admin_roles_count_only_where_they_were_named(rig: Rig) -> None:
    assert "can now use" in await rig.say(f"adminrole add {ROLE}", community="A", admin=True)
    assert "ch-A" not in await rig.say("subscriptions", community="A", roles=(ROLE,))
    assert "No channel here" in await rig.say("subscriptions", community="A", roles=(ROLE,))

    for other in ({"community": "B"}, {"community": "A", "platform": "slack"}):
        refused = await rig.say("subscriptions", roles=(ROLE,), **other)  # type: ignore[arg-type]
        assert "Only server admins can use this command." in refused
        listing = await rig.say("adminrole list", admin=True, **other)  # type: ignore[arg-type]
        assert ROLE not in listing
        await rig.say(f"adminrole remove {ROLE}", admin=True, **other)  # type: ignore[arg-type]
    assert await rig.count(CommunityAdminRoleRow) == 1
    # A role admin cannot hand admin rights on, here or anywhere.
    refused = await rig.say("adminrole add 222222222222", community="A", roles=(ROLE,))
    assert "Only server admins (Manage Server)" in refused
    assert await rig.count(CommunityAdminRoleRow) == 1


async def test_an_admin_role_moderates_workarounds_only_where_it_was_named(rig: Rig) -> None:
    shared = await rig.say("workaround add openai Use the batch API", community="A", user="w")
    number = shared.split("#", 1)[1].split()[0]
    await rig.say(f"adminrole add {ROLE}", community="A", admin=True)

    refused = await rig.say(f"workaround hide {number}", community="B", roles=(ROLE,))
    assert "Only admins can hide workarounds here" in refused
    assert "Only admins can change" in await rig.say(
        "workaround origin on Evil", community="B", roles=(ROLE,)
    )
    assert "Only the person who shared" in await rig.say(
        f"workaround remove {number}", community="B", roles=(ROLE,)
    )
    assert await rig.count(WorkaroundHideRow) == 0

    # In A, the role is what /adminrole says: it may use the admin actions.
    hidden = await rig.say(f"workaround hide {number}", community="A", roles=(ROLE,))
    assert "is hidden in this community" in hidden
    credited = await rig.say("workaround origin on Team A", community="A", roles=(ROLE,))
    assert "now show the platform" in credited
    removed = await rig.say(f"workaround remove {number}", community="A", roles=(ROLE,))
    assert "is removed for everyone" in removed
